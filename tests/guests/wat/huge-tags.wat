;; An answer whose `tags` list holds a million empty strings: 8 MB of guest memory, but 24 MB
;; of host `String`s if it were lifted whole, and no text for the output limit to count.
;; @route
(drop (memory.grow (i32.const 124)))
(i32.store (i32.const 2080) (i32.const 65536))
(i32.store (i32.const 2084) (i32.const 1000000))

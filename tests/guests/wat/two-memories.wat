;; Two linear memories of 6 MiB each (96 pages): under a 10 MiB limit per memory, twice the
;; limit together. The memory limit must count them together.
;; @items
(memory $second 96)
(func $touch (i32.store $second (i32.const 1048576) (i32.const 1)))
;; @route
(memory.grow (i32.const 95)) drop
(call $touch)

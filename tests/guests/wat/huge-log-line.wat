;; One `log` call with a 4 MiB message: the host must refuse it before copying it.
;; @route
(drop (memory.grow (i32.const 64)))
(call $log (i32.const 2) (i32.const 65536) (i32.const 4194304))

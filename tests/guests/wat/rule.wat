;; A rule written as a bare core module, the way the outside corpus wrote theirs: no SDK, no
;; language runtime. `tests/support/wat.rs` embeds the contract's WIT and wraps it into a
;; component with `wit-component`. It routes every ticket to queue "wat" (party msp, tier 1,
;; priority p3, no SLA) with the reason "core module".
;;
;; Hostile variants splice text in at the two markers: `@items` (module-level items) and
;; `@route` (instructions run by `route` before it returns its answer at address 2048).
;;
;; Answer layout (result<decision, rule-error>, canonical ABI, 32-bit):
;;   2048 tag (0 = ok)   2052 queue ptr   2056 queue len   2060 party   2061 tier
;;   2062 priority       2064 sla ptr/len 2072 escalations ptr/len     2080 tags ptr/len
;;   2088 reason ptr/len
(module
  (import "switchboard:rules/host@0.1.0" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (data (i32.const 1024) "wat")
  (data (i32.const 1040) "core module")

  ;; A bump allocator: enough for the host to hand over one ticket event.
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32)
        (param $size i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add (i32.shr_u (i32.sub (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
                                    (i32.const 16))
                         (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (local.get $p))

  ;; @items

  (func (export "route") (param $event i32) (result i32)
    (i32.store8 (i32.const 2048) (i32.const 0))
    (i32.store (i32.const 2052) (i32.const 1024))
    (i32.store (i32.const 2056) (i32.const 3))
    (i32.store8 (i32.const 2060) (i32.const 0))
    (i32.store8 (i32.const 2061) (i32.const 1))
    (i32.store8 (i32.const 2062) (i32.const 2))
    (i32.store (i32.const 2088) (i32.const 1040))
    (i32.store (i32.const 2092) (i32.const 11))
    ;; @route
    (i32.const 2048))
)

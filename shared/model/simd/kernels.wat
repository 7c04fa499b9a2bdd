;; Flat-array kernels of the coordinator's hot path, in WebAssembly SIMD (four f32 lanes). Every
;; pointer is a byte offset into the imported memory; every count is in f32 elements. Each loop runs
;; four lanes at a time, then a scalar tail. `tools/build_kernels.ts` assembles this file into
;; kernels_wasm.ts; simd_test.ts checks that the two agree.
(module
  (import "env" "memory" (memory 1))

  ;; Keras 3's Adam on one flat variable, in f32 as Keras computes it:
  ;;   m += (g - m) * b1;  v += (g² - v) * b2;  w -= (m * alpha) / (sqrt(v) + eps)
  ;; with b1 = 1 - beta_1, b2 = 1 - beta_2 and alpha the bias-corrected learning rate.
  (func (export "adam") (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $alpha f32) (param $b1 f32) (param $b2 f32) (param $eps f32)
    (local $i i32) (local $vec_end i32) (local $end i32)
    (local $gi v128) (local $mi v128) (local $vi v128)
    (local $va v128) (local $vb1 v128) (local $vb2 v128) (local $veps v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $va (f32x4.splat (local.get $alpha)))
    (local.set $vb1 (f32x4.splat (local.get $b1)))
    (local.set $vb2 (f32x4.splat (local.get $b2)))
    (local.set $veps (f32x4.splat (local.get $eps)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vec_end (i32.and (local.get $end) (i32.const -16)))
    (block $vec_done
      (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $i) (local.get $vec_end)))
        (local.set $gi (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $mi (v128.load (i32.add (local.get $m) (local.get $i))))
        (local.set $vi (v128.load (i32.add (local.get $v) (local.get $i))))
        (local.set $mi (f32x4.add (local.get $mi)
          (f32x4.mul (f32x4.sub (local.get $gi) (local.get $mi)) (local.get $vb1))))
        (local.set $vi (f32x4.add (local.get $vi)
          (f32x4.mul (f32x4.sub (f32x4.mul (local.get $gi) (local.get $gi)) (local.get $vi)) (local.get $vb2))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mi))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vi))
        (v128.store (i32.add (local.get $w) (local.get $i))
          (f32x4.sub (v128.load (i32.add (local.get $w) (local.get $i)))
            (f32x4.div (f32x4.mul (local.get $mi) (local.get $va))
              (f32x4.add (f32x4.sqrt (local.get $vi)) (local.get $veps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
        (local.set $ms (f32.load (i32.add (local.get $m) (local.get $i))))
        (local.set $vs (f32.load (i32.add (local.get $v) (local.get $i))))
        (local.set $ms (f32.add (local.get $ms)
          (f32.mul (f32.sub (local.get $gs) (local.get $ms)) (local.get $b1))))
        (local.set $vs (f32.add (local.get $vs)
          (f32.mul (f32.sub (f32.mul (local.get $gs) (local.get $gs)) (local.get $vs)) (local.get $b2))))
        (f32.store (i32.add (local.get $m) (local.get $i)) (local.get $ms))
        (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $vs))
        (f32.store (i32.add (local.get $w) (local.get $i))
          (f32.sub (f32.load (i32.add (local.get $w) (local.get $i)))
            (f32.div (f32.mul (local.get $ms) (local.get $alpha))
              (f32.add (f32.sqrt (local.get $vs)) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))
  )

  ;; Zero when all n values at x are finite, NaN otherwise: the sum of x * 0, which is NaN exactly
  ;; for NaN and ±infinity.
  (func (export "probe") (param $x i32) (param $n i32) (result f32)
    (local $i i32) (local $vec_end i32) (local $end i32) (local $acc v128) (local $sum f32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vec_end (i32.and (local.get $end) (i32.const -16)))
    (block $vec_done
      (loop $vec
        (br_if $vec_done (i32.ge_u (local.get $i) (local.get $vec_end)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (f32x4.splat (f32.const 0)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (local.set $sum (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $sum (f32.add (local.get $sum)
          (f32.mul (f32.load (i32.add (local.get $x) (local.get $i))) (f32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))
    (local.get $sum)
  )
)

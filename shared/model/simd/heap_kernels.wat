;; Kernels that run on the wasm backend's own heap: the module imports the memory of
;; @tensorflow/tfjs-backend-wasm, so a kernel reads and writes tensors where they are, by byte offset
;; (heap_kernels.ts binds it). Four 32-bit lanes at a time, then a scalar tail. `tools/build_kernels.ts`
;; assembles this file into heap_kernels_wasm.ts.
(module
  (import "env" "memory" (memory 1))

  ;; MaxPoolGrad, NHWC: dx = 0, then for each pooling window and channel dx[argmax] += dy, where argmax
  ;; is the first position (row-major) whose value is strictly larger than all before it, the cpu
  ;; backend's rule; a window of only NaN or -Infinity passes no gradient. Sizes are in elements;
  ;; filter sizes are the effective (dilated) ones.
  (func (export "max_pool_grad")
        (param $x i32) (param $dy i32) (param $dx i32)
        (param $batch i32) (param $in_h i32) (param $in_w i32) (param $ch i32)
        (param $out_h i32) (param $out_w i32) (param $filter_h i32) (param $filter_w i32)
        (param $stride_h i32) (param $stride_w i32) (param $top i32) (param $left i32)
    (local $b i32) (local $oy i32) (local $ox i32)
    (local $y0 i32) (local $y1 i32) (local $x0 i32) (local $x1 i32)
    (local $iy i32) (local $ix i32) (local $c i32) (local $image i32) (local $pixel i32) (local $out i32)
    (local $vec_ch i32) (local $at i32) (local $ws i32) (local $bs f32) (local $vs f32)
    (local $best v128) (local $where v128) (local $v v128) (local $mask v128) (local $dyv v128)
    (local $disjoint i32)
    ;; Windows are disjoint when the strides are at least the window: no pixel gets two gradients.
    (local.set $disjoint (i32.and (i32.ge_s (local.get $stride_h) (local.get $filter_h))
      (i32.ge_s (local.get $stride_w) (local.get $filter_w))))
    (memory.fill (local.get $dx) (i32.const 0)
      (i32.shl
        (i32.mul (i32.mul (local.get $batch) (i32.mul (local.get $in_h) (local.get $in_w))) (local.get $ch))
        (i32.const 2)))
    (local.set $vec_ch (i32.and (local.get $ch) (i32.const -4)))
    (local.set $b (i32.const 0))
    (block $b_done (loop $b_loop
      (br_if $b_done (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $image (i32.mul (local.get $b)
        (i32.mul (i32.mul (local.get $in_h) (local.get $in_w)) (local.get $ch))))
      (local.set $oy (i32.const 0))
      (block $oy_done (loop $oy_loop
        (br_if $oy_done (i32.ge_u (local.get $oy) (local.get $out_h)))
        (local.set $y0 (i32.sub (i32.mul (local.get $oy) (local.get $stride_h)) (local.get $top)))
        (local.set $y1 (i32.add (local.get $y0) (local.get $filter_h)))
        (if (i32.lt_s (local.get $y0) (i32.const 0)) (then (local.set $y0 (i32.const 0))))
        (if (i32.gt_s (local.get $y1) (local.get $in_h)) (then (local.set $y1 (local.get $in_h))))
        (local.set $ox (i32.const 0))
        (block $ox_done (loop $ox_loop
          (br_if $ox_done (i32.ge_u (local.get $ox) (local.get $out_w)))
          (local.set $x0 (i32.sub (i32.mul (local.get $ox) (local.get $stride_w)) (local.get $left)))
          (local.set $x1 (i32.add (local.get $x0) (local.get $filter_w)))
          (if (i32.lt_s (local.get $x0) (i32.const 0)) (then (local.set $x0 (i32.const 0))))
          (if (i32.gt_s (local.get $x1) (local.get $in_w)) (then (local.set $x1 (local.get $in_w))))
          ;; Four channels at a time: the running maximum and where it is, per lane.
          (local.set $c (i32.const 0))
          (block $c_done (loop $c_loop
            (br_if $c_done (i32.ge_u (local.get $c) (local.get $vec_ch)))
            (local.set $best (f32x4.splat (f32.const -inf)))
            (local.set $where (i32x4.splat (i32.const -1)))
            (local.set $iy (local.get $y0))
            (block $iy_done (loop $iy_loop
              (br_if $iy_done (i32.ge_s (local.get $iy) (local.get $y1)))
              (local.set $ix (local.get $x0))
              (block $ix_done (loop $ix_loop
                (br_if $ix_done (i32.ge_s (local.get $ix) (local.get $x1)))
                (local.set $pixel (i32.add (local.get $image)
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $in_w)) (local.get $ix))
                    (local.get $ch)) (local.get $c))))
                (local.set $v (v128.load (i32.add (local.get $x) (i32.shl (local.get $pixel) (i32.const 2)))))
                (local.set $mask (f32x4.gt (local.get $v) (local.get $best)))
                (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $mask)))
                (local.set $where (v128.bitselect
                  (i32x4.add (i32x4.splat (local.get $pixel)) (v128.const i32x4 0 1 2 3))
                  (local.get $where) (local.get $mask)))
                (local.set $ix (i32.add (local.get $ix) (i32.const 1)))
                (br $ix_loop)))
              (local.set $iy (i32.add (local.get $iy) (i32.const 1)))
              (br $iy_loop)))
            (if (local.get $disjoint)
              (then
                ;; Windows that do not overlap: each pixel of this one gets dy where it is the maximum
                ;; and keeps its 0 elsewhere, four channels per store.
                (local.set $dyv (v128.load (i32.add (local.get $dy)
                  (i32.shl (i32.add (local.get $out) (local.get $c)) (i32.const 2)))))
                (local.set $iy (local.get $y0))
                (block $sy_done (loop $sy_loop
                  (br_if $sy_done (i32.ge_s (local.get $iy) (local.get $y1)))
                  (local.set $ix (local.get $x0))
                  (block $sx_done (loop $sx_loop
                    (br_if $sx_done (i32.ge_s (local.get $ix) (local.get $x1)))
                    (local.set $pixel (i32.add (local.get $image)
                      (i32.add (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $in_w)) (local.get $ix))
                        (local.get $ch)) (local.get $c))))
                    (v128.store (i32.add (local.get $dx) (i32.shl (local.get $pixel) (i32.const 2)))
                      (v128.and (local.get $dyv)
                        (i32x4.eq (local.get $where)
                          (i32x4.add (i32x4.splat (local.get $pixel)) (v128.const i32x4 0 1 2 3)))))
                    (local.set $ix (i32.add (local.get $ix) (i32.const 1)))
                    (br $sx_loop)))
                  (local.set $iy (i32.add (local.get $iy) (i32.const 1)))
                  (br $sy_loop))))
              (else
                (local.set $at (i32x4.extract_lane 0 (local.get $where)))
                (if (i32.ge_s (local.get $at) (i32.const 0)) (then (call $add_grad (local.get $dx) (local.get $at)
                  (local.get $dy) (i32.add (local.get $out) (local.get $c)))))
                (local.set $at (i32x4.extract_lane 1 (local.get $where)))
                (if (i32.ge_s (local.get $at) (i32.const 0)) (then (call $add_grad (local.get $dx) (local.get $at)
                  (local.get $dy) (i32.add (local.get $out) (i32.add (local.get $c) (i32.const 1))))))
                (local.set $at (i32x4.extract_lane 2 (local.get $where)))
                (if (i32.ge_s (local.get $at) (i32.const 0)) (then (call $add_grad (local.get $dx) (local.get $at)
                  (local.get $dy) (i32.add (local.get $out) (i32.add (local.get $c) (i32.const 2))))))
                (local.set $at (i32x4.extract_lane 3 (local.get $where)))
                (if (i32.ge_s (local.get $at) (i32.const 0)) (then (call $add_grad (local.get $dx) (local.get $at)
                  (local.get $dy) (i32.add (local.get $out) (i32.add (local.get $c) (i32.const 3))))))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $c_loop)))
          ;; The channels left over, one at a time.
          (block $t_done (loop $t_loop
            (br_if $t_done (i32.ge_u (local.get $c) (local.get $ch)))
            (local.set $bs (f32.const -inf))
            (local.set $ws (i32.const -1))
            (local.set $iy (local.get $y0))
            (block $tiy_done (loop $tiy_loop
              (br_if $tiy_done (i32.ge_s (local.get $iy) (local.get $y1)))
              (local.set $ix (local.get $x0))
              (block $tix_done (loop $tix_loop
                (br_if $tix_done (i32.ge_s (local.get $ix) (local.get $x1)))
                (local.set $pixel (i32.add (local.get $image)
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $in_w)) (local.get $ix))
                    (local.get $ch)) (local.get $c))))
                (local.set $vs (f32.load (i32.add (local.get $x) (i32.shl (local.get $pixel) (i32.const 2)))))
                (if (f32.gt (local.get $vs) (local.get $bs))
                  (then (local.set $bs (local.get $vs)) (local.set $ws (local.get $pixel))))
                (local.set $ix (i32.add (local.get $ix) (i32.const 1)))
                (br $tix_loop)))
              (local.set $iy (i32.add (local.get $iy) (i32.const 1)))
              (br $tiy_loop)))
            (if (i32.ge_s (local.get $ws) (i32.const 0)) (then (call $add_grad (local.get $dx) (local.get $ws)
              (local.get $dy) (i32.add (local.get $out) (local.get $c)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $t_loop)))
          (local.set $out (i32.add (local.get $out) (local.get $ch)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $ox_loop)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oy_loop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $b_loop)))
  )

;; out[j] = Σᵢ x[i·width + j] over `rows` rows, accumulated in double precision in `acc` (8·width
  ;; bytes of scratch) and rounded once: the bias gradient of a dense or convolution layer.
  (func (export "column_sums") (param $x i32) (param $rows i32) (param $width i32) (param $acc i32)
        (param $out i32)
    (local $r i32) (local $j i32) (local $vec_w i32) (local $row i32) (local $a i32) (local $v v128)
    (memory.fill (local.get $acc) (i32.const 0) (i32.shl (local.get $width) (i32.const 3)))
    (local.set $vec_w (i32.and (local.get $width) (i32.const -4)))
    (local.set $row (local.get $x))
    (block $r_done (loop $r_loop
      (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $j_done (loop $j_loop
        (br_if $j_done (i32.ge_u (local.get $j) (local.get $vec_w)))
        (local.set $v (v128.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 3))))
        (v128.store (local.get $a)
          (f64x2.add (v128.load (local.get $a)) (f64x2.promote_low_f32x4 (local.get $v))))
        (v128.store offset=16 (local.get $a)
          (f64x2.add (v128.load offset=16 (local.get $a))
            (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $j_loop)))
      (block $t_done (loop $t_loop
        (br_if $t_done (i32.ge_u (local.get $j) (local.get $width)))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 3))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a))
          (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $t_loop)))
      (local.set $row (i32.add (local.get $row) (i32.shl (local.get $width) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r_loop)))
    (local.set $j (i32.const 0))
    (block $o_done (loop $o_loop
      (br_if $o_done (i32.ge_u (local.get $j) (local.get $width)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
        (f32.demote_f64 (f64.load (i32.add (local.get $acc) (i32.shl (local.get $j) (i32.const 3))))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $o_loop)))
  )

;; im2col for images `first .. first+count-1` (NHWC, no dilation): writes one row of `cols` per output
  ;; pixel, filter_h·filter_w·ch values in HWC order, zeros outside the image; each filter row's
  ;; in-image part is one copy. Sizes are in elements.
  (func (export "im2col")
        (param $x i32) (param $cols i32) (param $first i32) (param $count i32)
        (param $in_h i32) (param $in_w i32) (param $ch i32) (param $out_h i32) (param $out_w i32)
        (param $filter_h i32) (param $filter_w i32) (param $stride_h i32) (param $stride_w i32)
        (param $top i32) (param $left i32)
    (local $image i32) (local $end i32) (local $oy i32) (local $ox i32) (local $fy i32) (local $iy i32)
    (local $ix0 i32) (local $fx0 i32) (local $fx1 i32) (local $col i32)
    (local $filter_row i32) (local $image_base i32) (local $head i32) (local $run i32)
    (local.set $filter_row (i32.shl (i32.mul (local.get $filter_w) (local.get $ch)) (i32.const 2)))
    (local.set $col (local.get $cols))
    (local.set $image (local.get $first))
    (local.set $end (i32.add (local.get $first) (local.get $count)))
    (block $img_done (loop $img_loop
      (br_if $img_done (i32.ge_u (local.get $image) (local.get $end)))
      (local.set $image_base (i32.mul (local.get $image)
        (i32.mul (i32.mul (local.get $in_h) (local.get $in_w)) (local.get $ch))))
      (local.set $oy (i32.const 0))
      (block $oy_done (loop $oy_loop
        (br_if $oy_done (i32.ge_u (local.get $oy) (local.get $out_h)))
        (local.set $ox (i32.const 0))
        (block $ox_done (loop $ox_loop
          (br_if $ox_done (i32.ge_u (local.get $ox) (local.get $out_w)))
          (local.set $ix0 (i32.sub (i32.mul (local.get $ox) (local.get $stride_w)) (local.get $left)))
          (local.set $fx0 (i32.sub (i32.const 0) (local.get $ix0)))
          (if (i32.lt_s (local.get $fx0) (i32.const 0)) (then (local.set $fx0 (i32.const 0))))
          (local.set $fx1 (i32.sub (local.get $in_w) (local.get $ix0)))
          (if (i32.gt_s (local.get $fx1) (local.get $filter_w)) (then (local.set $fx1 (local.get $filter_w))))
          (local.set $fy (i32.const 0))
          (block $fy_done (loop $fy_loop
            (br_if $fy_done (i32.ge_u (local.get $fy) (local.get $filter_h)))
            (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $stride_h)) (local.get $top))
              (local.get $fy)))
            (if (i32.or (i32.or (i32.lt_s (local.get $iy) (i32.const 0)) (i32.ge_s (local.get $iy) (local.get $in_h)))
                  (i32.ge_s (local.get $fx0) (local.get $fx1)))
              (then (call $zero (local.get $col) (local.get $filter_row)))
              (else
                (local.set $head (i32.shl (i32.mul (local.get $fx0) (local.get $ch)) (i32.const 2)))
                (local.set $run (i32.shl (i32.mul (i32.sub (local.get $fx1) (local.get $fx0)) (local.get $ch))
                  (i32.const 2)))
                (call $zero (local.get $col) (local.get $head))
                (call $copy (i32.add (local.get $col) (local.get $head))
                  (i32.add (local.get $x) (i32.shl
                    (i32.add (local.get $image_base)
                      (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $in_w))
                        (i32.add (local.get $ix0) (local.get $fx0))) (local.get $ch)))
                    (i32.const 2)))
                  (local.get $run))
                (call $zero (i32.add (local.get $col) (i32.add (local.get $head) (local.get $run)))
                  (i32.sub (local.get $filter_row) (i32.add (local.get $head) (local.get $run))))))
            (local.set $col (i32.add (local.get $col) (local.get $filter_row)))
            (local.set $fy (i32.add (local.get $fy) (i32.const 1)))
            (br $fy_loop)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $ox_loop)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oy_loop)))
      (local.set $image (i32.add (local.get $image) (i32.const 1)))
      (br $img_loop)))
  )

  ;; The adjoint of im2col for images `first .. first+count-1` (NHWC, no dilation): adds each row of
  ;; `cols` (one per output pixel, filter_h·filter_w·ch values in HWC order) back onto the input pixels
  ;; it was read from, dx += …; one contiguous run per filter row, four floats at a time. Sizes are in
  ;; elements.
  (func (export "col2im")
        (param $cols i32) (param $dx i32) (param $first i32) (param $count i32)
        (param $in_h i32) (param $in_w i32) (param $ch i32) (param $out_h i32) (param $out_w i32)
        (param $filter_h i32) (param $filter_w i32) (param $stride_h i32) (param $stride_w i32)
        (param $top i32) (param $left i32)
    (local $image i32) (local $end i32) (local $oy i32) (local $ox i32) (local $fy i32) (local $iy i32)
    (local $ix0 i32) (local $fx0 i32) (local $fx1 i32) (local $row i32) (local $col i32)
    (local $row_len i32) (local $filter_row i32) (local $image_base i32)
    (local $src i32) (local $dst i32) (local $len i32) (local $vec_end i32) (local $i i32)
    (local.set $filter_row (i32.mul (local.get $filter_w) (local.get $ch)))
    (local.set $row_len (i32.mul (local.get $filter_h) (local.get $filter_row)))
    (local.set $image (local.get $first))
    (local.set $end (i32.add (local.get $first) (local.get $count)))
    (block $img_done (loop $img_loop
      (br_if $img_done (i32.ge_u (local.get $image) (local.get $end)))
      (local.set $image_base (i32.mul (local.get $image)
        (i32.mul (i32.mul (local.get $in_h) (local.get $in_w)) (local.get $ch))))
      (local.set $oy (i32.const 0))
      (block $oy_done (loop $oy_loop
        (br_if $oy_done (i32.ge_u (local.get $oy) (local.get $out_h)))
        (local.set $ox (i32.const 0))
        (block $ox_done (loop $ox_loop
          (br_if $ox_done (i32.ge_u (local.get $ox) (local.get $out_w)))
          ;; The filter taps [fx0, fx1) whose input column lies inside the image.
          (local.set $ix0 (i32.sub (i32.mul (local.get $ox) (local.get $stride_w)) (local.get $left)))
          (local.set $fx0 (i32.sub (i32.const 0) (local.get $ix0)))
          (if (i32.lt_s (local.get $fx0) (i32.const 0)) (then (local.set $fx0 (i32.const 0))))
          (local.set $fx1 (i32.sub (local.get $in_w) (local.get $ix0)))
          (if (i32.gt_s (local.get $fx1) (local.get $filter_w)) (then (local.set $fx1 (local.get $filter_w))))
          (if (i32.lt_s (local.get $fx0) (local.get $fx1)) (then
            (local.set $col (local.get $row))
            (local.set $fy (i32.const 0))
            (block $fy_done (loop $fy_loop
              (br_if $fy_done (i32.ge_u (local.get $fy) (local.get $filter_h)))
              (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $stride_h)) (local.get $top))
                (local.get $fy)))
              (if (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $in_h)))
                (then
                  (local.set $src (i32.add (local.get $cols) (i32.shl
                    (i32.add (local.get $col) (i32.mul (local.get $fx0) (local.get $ch))) (i32.const 2))))
                  (local.set $dst (i32.add (local.get $dx) (i32.shl
                    (i32.add (local.get $image_base)
                      (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $in_w))
                        (i32.add (local.get $ix0) (local.get $fx0))) (local.get $ch)))
                    (i32.const 2))))
                  (local.set $len (i32.shl (i32.mul (i32.sub (local.get $fx1) (local.get $fx0)) (local.get $ch))
                    (i32.const 2)))
                  (local.set $vec_end (i32.and (local.get $len) (i32.const -16)))
                  (local.set $i (i32.const 0))
                  (block $v_done (loop $v_loop
                    (br_if $v_done (i32.ge_u (local.get $i) (local.get $vec_end)))
                    (v128.store (i32.add (local.get $dst) (local.get $i))
                      (f32x4.add (v128.load (i32.add (local.get $dst) (local.get $i)))
                        (v128.load (i32.add (local.get $src) (local.get $i)))))
                    (local.set $i (i32.add (local.get $i) (i32.const 16)))
                    (br $v_loop)))
                  (block $s_done (loop $s_loop
                    (br_if $s_done (i32.ge_u (local.get $i) (local.get $len)))
                    (f32.store (i32.add (local.get $dst) (local.get $i))
                      (f32.add (f32.load (i32.add (local.get $dst) (local.get $i)))
                        (f32.load (i32.add (local.get $src) (local.get $i)))))
                    (local.set $i (i32.add (local.get $i) (i32.const 4)))
                    (br $s_loop)))))
              (local.set $col (i32.add (local.get $col) (local.get $filter_row)))
              (local.set $fy (i32.add (local.get $fy) (i32.const 1)))
              (br $fy_loop)))))
          (local.set $row (i32.add (local.get $row) (local.get $row_len)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $ox_loop)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oy_loop)))
      (local.set $image (i32.add (local.get $image) (i32.const 1)))
      (br $img_loop)))
  )

;; BatchNormalization's passes over x of `rows` rows of `ch` channels (layers/batch_normalization.ts
  ;; and backends/kernels/batch_norm.ts). `acc` is scratch of 16·ch bytes (two f64 per channel).

  ;; Per channel, the mean and the sum of squared deviations from it, in double precision.
  (func (export "bn_moments") (param $x i32) (param $rows i32) (param $ch i32) (param $acc i32)
        (param $mean i32) (param $squares i32)
    (local $r i32) (local $c i32) (local $row i32) (local $a i32) (local $m i32) (local $vec i32)
    (local $v v128) (local $lo v128) (local $hi v128) (local $inv f64)
    (memory.fill (local.get $acc) (i32.const 0) (i32.shl (local.get $ch) (i32.const 4)))
    (local.set $vec (i32.and (local.get $ch) (i32.const -4)))
    ;; Sums at acc[0 .. ch), squared deviations at acc[ch .. 2ch) (f64 each).
    (local.set $m (i32.add (local.get $acc) (i32.shl (local.get $ch) (i32.const 3))))
    (local.set $row (local.get $x))
    (block $r1_done (loop $r1
      (br_if $r1_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $c1_done (loop $c1
        (br_if $c1_done (i32.ge_u (local.get $c) (local.get $vec)))
        (local.set $v (v128.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (f64x2.promote_low_f32x4 (local.get $v))))
        (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a))
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c1)))
      (block $t1_done (loop $t1
        (br_if $t1_done (i32.ge_u (local.get $c) (local.get $ch)))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a))
          (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $t1)))
      (local.set $row (i32.add (local.get $row) (i32.shl (local.get $ch) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r1)))
    ;; The means, in place of the sums.
    (local.set $inv (f64.div (f64.const 1) (f64.convert_i32_u (local.get $rows))))
    (local.set $c (i32.const 0))
    (block $d_done (loop $d
      (br_if $d_done (i32.ge_u (local.get $c) (local.get $ch)))
      (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
      (f64.store (local.get $a) (f64.mul (f64.load (local.get $a)) (local.get $inv)))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $d)))
    (local.set $r (i32.const 0))
    (local.set $row (local.get $x))
    (block $r2_done (loop $r2
      (br_if $r2_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $c2_done (loop $c2
        (br_if $c2_done (i32.ge_u (local.get $c) (local.get $vec)))
        (local.set $v (v128.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (local.set $lo (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (v128.load (local.get $a))))
        (local.set $hi (f64x2.sub
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
          (v128.load offset=16 (local.get $a))))
        (local.set $a (i32.add (local.get $m) (i32.shl (local.get $c) (i32.const 3))))
        (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (f64x2.mul (local.get $lo) (local.get $lo))))
        (v128.store offset=16 (local.get $a)
          (f64x2.add (v128.load offset=16 (local.get $a)) (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c2)))
      (block $t2_done (loop $t2
        (br_if $t2_done (i32.ge_u (local.get $c) (local.get $ch)))
        (local.set $a (i32.shl (local.get $c) (i32.const 3)))
        (f64.store (i32.add (local.get $m) (local.get $a)) (f64.add (f64.load (i32.add (local.get $m) (local.get $a)))
          (call $square (f64.sub
            (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))
            (f64.load (i32.add (local.get $acc) (local.get $a)))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $t2)))
      (local.set $row (i32.add (local.get $row) (i32.shl (local.get $ch) (i32.const 2))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r2)))
    (local.set $c (i32.const 0))
    (block $o_done (loop $o
      (br_if $o_done (i32.ge_u (local.get $c) (local.get $ch)))
      (f32.store (i32.add (local.get $mean) (i32.shl (local.get $c) (i32.const 2)))
        (f32.demote_f64 (f64.load (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))))
      (f32.store (i32.add (local.get $squares) (i32.shl (local.get $c) (i32.const 2)))
        (f32.demote_f64 (f64.load (i32.add (local.get $m) (i32.shl (local.get $c) (i32.const 3))))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $o)))
  )

  (func $square (param $d f64) (result f64) (f64.mul (local.get $d) (local.get $d)))

  ;; x̂ = (x − mean)·invStd and y = x̂·γ + β, in f32, operation for operation as the composed ops.
  (func (export "bn_normalize") (param $x i32) (param $rows i32) (param $ch i32) (param $mean i32)
        (param $inv i32) (param $gamma i32) (param $beta i32) (param $xhat i32) (param $y i32)
    (local $r i32) (local $c i32) (local $o i32) (local $k i32) (local $vec i32) (local $h v128) (local $hs f32)
    (local.set $vec (i32.and (local.get $ch) (i32.const -4)))
    (block $r_done (loop $r_loop
      (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $c_done (loop $c_loop
        (br_if $c_done (i32.ge_u (local.get $c) (local.get $vec)))
        (local.set $k (i32.shl (local.get $c) (i32.const 2)))
        (local.set $h (f32x4.mul
          (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $o))) (v128.load (i32.add (local.get $mean) (local.get $k))))
          (v128.load (i32.add (local.get $inv) (local.get $k)))))
        (v128.store (i32.add (local.get $xhat) (local.get $o)) (local.get $h))
        (v128.store (i32.add (local.get $y) (local.get $o))
          (f32x4.add (f32x4.mul (local.get $h) (v128.load (i32.add (local.get $gamma) (local.get $k))))
            (v128.load (i32.add (local.get $beta) (local.get $k)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c_loop)))
      (block $t_done (loop $t_loop
        (br_if $t_done (i32.ge_u (local.get $c) (local.get $ch)))
        (local.set $k (i32.shl (local.get $c) (i32.const 2)))
        (local.set $hs (f32.mul
          (f32.sub (f32.load (i32.add (local.get $x) (local.get $o))) (f32.load (i32.add (local.get $mean) (local.get $k))))
          (f32.load (i32.add (local.get $inv) (local.get $k)))))
        (f32.store (i32.add (local.get $xhat) (local.get $o)) (local.get $hs))
        (f32.store (i32.add (local.get $y) (local.get $o))
          (f32.add (f32.mul (local.get $hs) (f32.load (i32.add (local.get $gamma) (local.get $k))))
            (f32.load (i32.add (local.get $beta) (local.get $k)))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $t_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r_loop)))
  )

  ;; Per channel Σdy and Σ(dy·x̂) (the product in f32, sums in double precision).
  (func (export "bn_grad_sums") (param $dy i32) (param $xhat i32) (param $rows i32) (param $ch i32)
        (param $acc i32) (param $dbeta i32) (param $dgamma i32)
    (local $r i32) (local $c i32) (local $o i32) (local $a i32) (local $b i32) (local $vec i32)
    (local $d v128) (local $p v128) (local $ds f32)
    (memory.fill (local.get $acc) (i32.const 0) (i32.shl (local.get $ch) (i32.const 4)))
    (local.set $vec (i32.and (local.get $ch) (i32.const -4)))
    (block $r_done (loop $r_loop
      (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $c_done (loop $c_loop
        (br_if $c_done (i32.ge_u (local.get $c) (local.get $vec)))
        (local.set $d (v128.load (i32.add (local.get $dy) (local.get $o))))
        (local.set $p (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $xhat) (local.get $o)))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (local.set $b (i32.add (local.get $a) (i32.shl (local.get $ch) (i32.const 3))))
        (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (f64x2.promote_low_f32x4 (local.get $d))))
        (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a))
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $d) (local.get $d)))))
        (v128.store (local.get $b) (f64x2.add (v128.load (local.get $b)) (f64x2.promote_low_f32x4 (local.get $p))))
        (v128.store offset=16 (local.get $b) (f64x2.add (v128.load offset=16 (local.get $b))
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $p) (local.get $p)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c_loop)))
      (block $t_done (loop $t_loop
        (br_if $t_done (i32.ge_u (local.get $c) (local.get $ch)))
        (local.set $ds (f32.load (i32.add (local.get $dy) (local.get $o))))
        (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
        (local.set $b (i32.add (local.get $a) (i32.shl (local.get $ch) (i32.const 3))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.promote_f32 (local.get $ds))))
        (f64.store (local.get $b) (f64.add (f64.load (local.get $b))
          (f64.promote_f32 (f32.mul (local.get $ds) (f32.load (i32.add (local.get $xhat) (local.get $o)))))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $t_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r_loop)))
    (local.set $c (i32.const 0))
    (block $w_done (loop $w
      (br_if $w_done (i32.ge_u (local.get $c) (local.get $ch)))
      (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
      (f32.store (i32.add (local.get $dbeta) (i32.shl (local.get $c) (i32.const 2))) (f32.demote_f64 (f64.load (local.get $a))))
      (f32.store (i32.add (local.get $dgamma) (i32.shl (local.get $c) (i32.const 2)))
        (f32.demote_f64 (f64.load (i32.add (local.get $a) (i32.shl (local.get $ch) (i32.const 3))))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $w)))
  )

  ;; dx = (γ·invStd)·((dy − a) − x̂·b), in f32, operation for operation as the composed ops.
  (func (export "bn_grad") (param $dy i32) (param $xhat i32) (param $rows i32) (param $ch i32)
        (param $a i32) (param $b i32) (param $gamma i32) (param $inv i32) (param $dx i32)
    (local $r i32) (local $c i32) (local $o i32) (local $k i32) (local $vec i32)
    (local.set $vec (i32.and (local.get $ch) (i32.const -4)))
    (block $r_done (loop $r_loop
      (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $c_done (loop $c_loop
        (br_if $c_done (i32.ge_u (local.get $c) (local.get $vec)))
        (local.set $k (i32.shl (local.get $c) (i32.const 2)))
        (v128.store (i32.add (local.get $dx) (local.get $o))
          (f32x4.mul
            (f32x4.mul (v128.load (i32.add (local.get $gamma) (local.get $k))) (v128.load (i32.add (local.get $inv) (local.get $k))))
            (f32x4.sub
              (f32x4.sub (v128.load (i32.add (local.get $dy) (local.get $o))) (v128.load (i32.add (local.get $a) (local.get $k))))
              (f32x4.mul (v128.load (i32.add (local.get $xhat) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $k)))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c_loop)))
      (block $t_done (loop $t_loop
        (br_if $t_done (i32.ge_u (local.get $c) (local.get $ch)))
        (local.set $k (i32.shl (local.get $c) (i32.const 2)))
        (f32.store (i32.add (local.get $dx) (local.get $o))
          (f32.mul
            (f32.mul (f32.load (i32.add (local.get $gamma) (local.get $k))) (f32.load (i32.add (local.get $inv) (local.get $k))))
            (f32.sub
              (f32.sub (f32.load (i32.add (local.get $dy) (local.get $o))) (f32.load (i32.add (local.get $a) (local.get $k))))
              (f32.mul (f32.load (i32.add (local.get $xhat) (local.get $o))) (f32.load (i32.add (local.get $b) (local.get $k)))))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $t_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r_loop)))
  )

;; The epilogue of a dense or convolution kernel: out[r, c] += bias[c] over `rows` rows of `cols`
  ;; (no bias when `bias` is -1), then ReLU when `relu` is 1 as max(x, 0) (NaN stays NaN, -0 becomes 0).
  (func (export "bias_relu") (param $out i32) (param $bias i32) (param $rows i32) (param $cols i32)
        (param $relu i32)
    (local $r i32) (local $c i32) (local $o i32) (local $vec i32) (local $v v128) (local $s f32)
    (local.set $vec (i32.and (local.get $cols) (i32.const -4)))
    (block $r_done (loop $r_loop
      (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $c (i32.const 0))
      (block $c_done (loop $c_loop
        (br_if $c_done (i32.ge_u (local.get $c) (local.get $vec)))
        (local.set $v (v128.load (i32.add (local.get $out) (local.get $o))))
        (if (i32.ne (local.get $bias) (i32.const -1)) (then
          (local.set $v (f32x4.add (local.get $v)
            (v128.load (i32.add (local.get $bias) (i32.shl (local.get $c) (i32.const 2))))))))
        (if (local.get $relu) (then (local.set $v (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0)))))
        (v128.store (i32.add (local.get $out) (local.get $o)) (local.get $v))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c_loop)))
      (block $t_done (loop $t_loop
        (br_if $t_done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $s (f32.load (i32.add (local.get $out) (local.get $o))))
        (if (i32.ne (local.get $bias) (i32.const -1)) (then
          (local.set $s (f32.add (local.get $s)
            (f32.load (i32.add (local.get $bias) (i32.shl (local.get $c) (i32.const 2))))))))
        (if (local.get $relu) (then (local.set $s (f32.max (local.get $s) (f32.const 0)))))
        (f32.store (i32.add (local.get $out) (local.get $o)) (local.get $s))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $t_loop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $r_loop)))
  )

;; ReLU's gradient: dx = dy · step(x), step(x) = 1 for x > 0, NaN for NaN, else 0: in one pass what
  ;; the stock gradient does in three (step, cast, multiply), with the same values.
  (func (export "relu_grad") (param $dy i32) (param $x i32) (param $dx i32) (param $n i32)
    (local $i i32) (local $end i32) (local $vec_end i32) (local $xv v128) (local $step v128) (local $xs f32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vec_end (i32.and (local.get $end) (i32.const -16)))
    (block $v_done (loop $v
      (br_if $v_done (i32.ge_u (local.get $i) (local.get $vec_end)))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $step (v128.bitselect (v128.const f32x4 1 1 1 1) (v128.const f32x4 0 0 0 0)
        (f32x4.gt (local.get $xv) (v128.const f32x4 0 0 0 0))))
      (local.set $step (v128.bitselect (local.get $xv) (local.get $step)
        (f32x4.ne (local.get $xv) (local.get $xv))))
      (v128.store (i32.add (local.get $dx) (local.get $i))
        (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $i))) (local.get $step)))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $v)))
    (block $s_done (loop $s
      (br_if $s_done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $xs (f32.load (i32.add (local.get $x) (local.get $i))))
      (f32.store (i32.add (local.get $dx) (local.get $i))
        (f32.mul (f32.load (i32.add (local.get $dy) (local.get $i)))
          (select (local.get $xs)
            (select (f32.const 1) (f32.const 0) (f32.gt (local.get $xs) (f32.const 0)))
            (f32.ne (local.get $xs) (local.get $xs)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $s)))
  )

;; Whether `n` floats at `p` are all finite: Σ x·0 over them, which is 0 (or -0) when every value is
  ;; finite and NaN when one is NaN or ±Infinity. Four vectors at a time into four accumulators, so
  ;; the additions do not wait on each other; then single vectors, then the scalar tail.
  (func (export "nonfinite_probe") (param $p i32) (param $n i32) (result f32)
    (local $i i32) (local $end i32) (local $vec_end i32) (local $quad_end i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128) (local $s f32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vec_end (i32.and (local.get $end) (i32.const -16)))
    (local.set $quad_end (i32.and (local.get $end) (i32.const -64)))
    (block $q_done (loop $q
      (br_if $q_done (i32.ge_u (local.get $i) (local.get $quad_end)))
      (local.set $a (f32x4.add (local.get $a) (f32x4.mul
        (v128.load (i32.add (local.get $p) (local.get $i))) (v128.const f32x4 0 0 0 0))))
      (local.set $b (f32x4.add (local.get $b) (f32x4.mul
        (v128.load offset=16 (i32.add (local.get $p) (local.get $i))) (v128.const f32x4 0 0 0 0))))
      (local.set $c (f32x4.add (local.get $c) (f32x4.mul
        (v128.load offset=32 (i32.add (local.get $p) (local.get $i))) (v128.const f32x4 0 0 0 0))))
      (local.set $d (f32x4.add (local.get $d) (f32x4.mul
        (v128.load offset=48 (i32.add (local.get $p) (local.get $i))) (v128.const f32x4 0 0 0 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 64)))
      (br $q)))
    (block $v_done (loop $v
      (br_if $v_done (i32.ge_u (local.get $i) (local.get $vec_end)))
      (local.set $a (f32x4.add (local.get $a)
        (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $i))) (v128.const f32x4 0 0 0 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $v)))
    (local.set $a (f32x4.add (f32x4.add (local.get $a) (local.get $b)) (f32x4.add (local.get $c) (local.get $d))))
    (local.set $s (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
      (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))
    (block $s_done (loop $t
      (br_if $s_done (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $s (f32.add (local.get $s)
        (f32.mul (f32.load (i32.add (local.get $p) (local.get $i))) (f32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $t)))
    (local.get $s)
  )

  ;; Zeros `bytes` bytes (a multiple of 4) at `p`: vectors, then floats. Runs here are short (a few
  ;; channels), where memory.fill's call costs more than the stores.
  (func $zero (param $p i32) (param $bytes i32)
    (local $i i32) (local $vec_end i32)
    (local.set $vec_end (i32.and (local.get $bytes) (i32.const -16)))
    (block $v_done (loop $v
      (br_if $v_done (i32.ge_u (local.get $i) (local.get $vec_end)))
      (v128.store (i32.add (local.get $p) (local.get $i)) (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $v)))
    (block $s_done (loop $s
      (br_if $s_done (i32.ge_u (local.get $i) (local.get $bytes)))
      (i32.store (i32.add (local.get $p) (local.get $i)) (i32.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $s)))
  )

  ;; Copies `bytes` bytes (a multiple of 4) from `src` to `dst` (not overlapping), as $zero does.
  (func $copy (param $dst i32) (param $src i32) (param $bytes i32)
    (local $i i32) (local $vec_end i32)
    (local.set $vec_end (i32.and (local.get $bytes) (i32.const -16)))
    (block $v_done (loop $v
      (br_if $v_done (i32.ge_u (local.get $i) (local.get $vec_end)))
      (v128.store (i32.add (local.get $dst) (local.get $i)) (v128.load (i32.add (local.get $src) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $v)))
    (block $s_done (loop $s
      (br_if $s_done (i32.ge_u (local.get $i) (local.get $bytes)))
      (i32.store (i32.add (local.get $dst) (local.get $i)) (i32.load (i32.add (local.get $src) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $s)))
  )

  ;; dx[at] += dy[from] (element indices).
  (func $add_grad (param $dx i32) (param $at i32) (param $dy i32) (param $from i32)
    (local $p i32)
    (local.set $p (i32.add (local.get $dx) (i32.shl (local.get $at) (i32.const 2))))
    (f32.store (local.get $p) (f32.add (f32.load (local.get $p))
      (f32.load (i32.add (local.get $dy) (i32.shl (local.get $from) (i32.const 2)))))))
)

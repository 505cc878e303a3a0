"use strict";
// Cuts a byte stream into lines without ever holding more than `limit` bytes of one line: a
// longer line is skipped, and only its first bytes are kept (enough to read its request id).

const HEAD_BYTES = 256;

class LineSplitter {
  /**
   * @param {number} limit the longest line kept, in bytes (without the newline)
   * @param {(line: string) => void} onLine
   * @param {(head: string, size: number) => void} onSkipped a longer line: its start and size
   */
  constructor(limit, onLine, onSkipped) {
    this.limit = limit;
    this.onLine = onLine;
    this.onSkipped = onSkipped;
    this.pieces = [];
    this.size = 0;
    this.head = null; // a Buffer while skipping a line
  }

  /** @param {Buffer} data */
  push(data) {
    let start = 0;
    while (start < data.length) {
      const newline = data.indexOf(10, start);
      const end = newline < 0 ? data.length : newline;
      this.#add(data.subarray(start, end));
      if (newline < 0) break;
      this.#emit();
      start = newline + 1;
    }
  }

  /** The stream ended: a last line without a newline still counts. */
  end() {
    if (this.size > 0) this.#emit();
  }

  #add(piece) {
    if (piece.length === 0) return;
    if (this.head === null && this.size + piece.length > this.limit) {
      this.head = firstBytes([...this.pieces, piece], HEAD_BYTES);
      this.pieces = [];
    } else if (this.head === null) {
      this.pieces.push(Buffer.from(piece)); // a copy: the reader may reuse its buffer
    }
    this.size += piece.length;
  }

  #emit() {
    const { head, size, pieces } = this;
    this.pieces = [];
    this.size = 0;
    this.head = null;
    if (head !== null) this.onSkipped(head.toString("utf8"), size);
    else this.onLine(Buffer.concat(pieces).toString("utf8"));
  }
}

/** The first `count` bytes of a list of buffers, copied. */
function firstBytes(buffers, count) {
  const parts = [];
  let taken = 0;
  for (const buffer of buffers) {
    if (taken >= count) break;
    const part = buffer.subarray(0, count - taken);
    parts.push(part);
    taken += part.length;
  }
  return Buffer.concat(parts);
}

module.exports = { LineSplitter };

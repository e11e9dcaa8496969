// tiktoken_bench.mjs: encodes a text file's documents (split at a separator) with npm's
// tiktoken, `gpt2` encoding, encode_ordinary (<|endoftext|> in the text is ordinary text, as
// arenagpt encodes it), one thread; prints one line: bytes, documents, tokens, seconds,
// MB/s, tokens/s. Usage: node tiktoken_bench.mjs FILE SEPARATOR
import { readFileSync } from "node:fs";
import { get_encoding } from "tiktoken";

const [file, sepArg] = process.argv.slice(2);
const sep = sepArg.replace(/\\n/g, "\n");
const bytes = readFileSync(file);
const text = bytes.toString("utf-8");
const enc = get_encoding("gpt2");
const t0 = process.hrtime.bigint();
let docs = 0, tokens = 0;
for (const doc of text.split(sep)) {
    if (doc.length === 0) continue;
    docs++;
    tokens += enc.encode_ordinary(doc).length;
}
const s = Number(process.hrtime.bigint() - t0) / 1e9;
enc.free();
console.log(`tiktoken: ${bytes.length} bytes, ${docs} documents, ${tokens} tokens, ` +
    `${s.toFixed(2)} s, ${(bytes.length / 1e6 / s).toFixed(1)} MB/s, ${Math.round(tokens / s)} tokens/s`);

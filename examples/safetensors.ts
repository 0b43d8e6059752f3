// Deterministic model weights in the safetensors format: fp16 values drawn from a normal
// distribution (sigma 0.02, like a freshly initialised transformer). Same seed, same bytes.

const SIGMA = 0.02;

function float16Bits(value: number): number {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) return sign | ((mantissa | 0x800000) >>> (14 - exponent)); // subnormal
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | (mantissa >>> 13);
}

/** `count` normal samples (Box-Muller over a xorshift generator) as little-endian fp16. */
export function normalFp16(count: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(count * 2);
  let x = seed >>> 0 || 1;
  const uniform = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) + 1) / 4294967297;
  };
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform())) * SIGMA;
    const theta = 2 * Math.PI * uniform();
    out.writeUInt16LE(float16Bits(r * Math.cos(theta)), i * 2);
    if (i + 1 < count) out.writeUInt16LE(float16Bits(r * Math.sin(theta)), i * 2 + 2);
  }
  return out;
}

/** A safetensors file of fp16 tensors (name -> shape), each filled with normal samples. */
export function safetensors(tensors: Record<string, number[]>, seed = 42): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const data: Buffer[] = [];
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = normalFp16(shape.reduce((a, b) => a * b, 1), seed + data.length);
    header[name] = { dtype: 'F16', shape, data_offsets: [offset, offset + bytes.length] };
    data.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...data]);
}

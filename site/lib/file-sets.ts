// "Copy only what you load": the files each library actually reads from a Hugging Face repository,
// found from the file list alone. Repositories often hold the same weights several times
// (pytorch_model.bin, model.safetensors, tf_model.h5, flax_model.msgpack, rust_model.ot, onnx/,
// fp16 and fp32 variants, a .ckpt beside the diffusers folders); a set names one copy of them,
// plus the configuration and tokenizer files the loader opens. The rules follow the loaders:
// transformers' from_pretrained (safetensors first, `model.safetensors.index.json` for shards),
// diffusers' `variant="fp16"` (per component folder of model_index.json), sentence-transformers'
// modules.json with its numbered module folders, timm's hf-hub loader, and llama.cpp's one GGUF
// file (or its `-00001-of-0000N` split) per quantisation.
import { unnamed, type Listing } from './dockerfile.ts';

export interface SizedFile {
  /** Path inside the image, without a leading '/'. */
  path: string;
  /** Bytes. */
  size: number;
}

export interface FileSet {
  /** Stable id for anchors and tests (`transformers-safetensors`, `gguf-Q4_K_M`). */
  id: string;
  /** Short title (`transformers (safetensors)`). */
  title: string;
  /** The paths of the set, sorted. */
  paths: string[];
  /** Total bytes of the set. */
  bytes: number;
}

/** Files transformers' tokenizers and processors load from the folder they are given. */
const TOKENIZER = new Set([
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'vocab.json', 'vocab.txt', 'merges.txt', 'tokenizer.model', 'spiece.model', 'sentencepiece.bpe.model',
  'preprocessor_config.json', 'processor_config.json', 'chat_template.json', 'chat_template.jinja',
]);
/** Configuration transformers reads beside the weights. */
const CONFIG = new Set(['config.json', 'generation_config.json']);

const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const dirname = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

/**
 * The repository's own Python code at its top level: with trust_remote_code (transformers,
 * sentence-transformers) or a custom pipeline (diffusers' `pipeline.py`) the library imports it,
 * and those modules import siblings whose names only their source tells (the site sees names only).
 */
const topLevelCode = (files: SizedFile[]) => files.filter((f) => /^[^/]+\.py$/.test(f.path));

const WEIGHTS = /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|ot|onnx|onnx_data|gguf)$/;

/**
 * One copy of the weights `<stem>[.<variant>].<ext>` directly in `dir`: the single file, or the
 * shards `<stem>[.<variant>]-00001-of-00002.<ext>` with their index (`<stem>.<ext>.index.json`,
 * diffusers' `<stem>.<ext>.index.<variant>.json`). Empty when there is none.
 */
function weights(files: SizedFile[], dir: string, stem: string, ext: string, variant?: string): SizedFile[] {
  const prefix = (dir ? dir + '/' : '') + stem + (variant ? '.' + variant : '');
  const single = files.filter((f) => f.path === `${prefix}.${ext}`);
  if (single.length) return single;
  const shard = new RegExp(`^${escapeRegExp(prefix)}-\\d{5}-of-\\d{5}\\.${escapeRegExp(ext)}$`);
  const shards = files.filter((f) => shard.test(f.path));
  if (!shards.length) return [];
  const index = `${dir ? dir + '/' : ''}${stem}.${ext}.index${variant ? '.' + variant : ''}.json`;
  return [...shards, ...files.filter((f) => f.path === index)];
}

/** The first of `stems` with safetensors weights in `dir` (the variant when asked and present), else PyTorch .bin. */
function firstWeights(files: SizedFile[], dir: string, stems: string[], variant?: string): { found: SizedFile[]; variant: boolean } {
  for (const stem of variant ? stems : []) {
    const found = weights(files, dir, stem, 'safetensors', variant);
    if (found.length) return { found, variant: true };
  }
  for (const [stem, ext] of [...stems.map((s) => [s, 'safetensors']), ...stems.map((s) => [s === 'model' ? 'pytorch_model' : s, 'bin'])]) {
    const found = weights(files, dir, stem, ext);
    if (found.length) return { found, variant: false };
  }
  return { found: [], variant: false };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function makeSet(id: string, title: string, chosen: SizedFile[]): FileSet {
  const unique = new Map(chosen.map((f) => [f.path, f]));
  const paths = [...unique.keys()].sort();
  return { id, title, paths, bytes: [...unique.values()].reduce((sum, f) => sum + f.size, 0) };
}

/** Config and tokenizer files directly in `dir`. */
function configAndTokenizer(files: SizedFile[], dir: string, extra: Set<string> = new Set()): SizedFile[] {
  return files.filter((f) => dirname(f.path) === dir && (CONFIG.has(basename(f.path)) || TOKENIZER.has(basename(f.path)) || extra.has(basename(f.path))));
}

/**
 * transformers (and timm, which reads the same names): config, tokenizer, one copy of the weights.
 * transformers also gets the top-level code (`topLevelCode`): a remote-code model loads its
 * configuration_*.py, modeling_*.py and tokenization_*.py from the repository.
 */
function transformersSets(files: SizedFile[], library: string | undefined): FileSet[] {
  if (!files.some((f) => f.path === 'config.json')) return [];
  const timm = library === 'timm';
  const base = timm ? files.filter((f) => f.path === 'config.json') : [...configAndTokenizer(files, ''), ...topLevelCode(files)];
  const { found } = firstWeights(files, '', ['model']);
  if (!found.length) return [];
  const format = found[0].path.endsWith('.bin') ? 'PyTorch .bin' : 'safetensors';
  const name = timm ? 'timm' : 'transformers';
  return [makeSet(`${name}-${format === 'safetensors' ? 'safetensors' : 'pytorch'}`, `${name} (${format})`, [...base, ...found])];
}

/** Top-level folders of exported copies (ONNX, OpenVINO, Core ML, Flax/JAX, TensorFlow), never a diffusers pipeline component. */
const EXPORT_FOLDER = /^(onnx|openvino|coreml|core_ml|flax|jax|tf|tflite|mlx)([_-].*)?$/i;
/** Weights only an exporter's runtime loads (`model.onnx`, `openvino_model.xml`, `*.mlmodel`, `*.msgpack`...). */
const EXPORT_WEIGHTS = /(\.onnx|\.onnx_data|openvino_model\.(xml|bin)|\.mlmodel|\.mlpackage\/.*|\.msgpack|\.tflite|\.pb)$/;

/**
 * diffusers: model_index.json, the top-level code (a custom `pipeline.py`) and, per component
 * folder, its configs, its code (a custom component's `my_unet_model.py`) and one copy of its weights.
 * The components are the top-level folders, less the exported copies: folders named for an
 * export format, and folders whose only weights are exported ones (SDXL's `vae_decoder/` with
 * its model.onnx). model_index.json, which lists the components, is not read: the site sees the
 * image's file names and sizes only (its eStargz TOC), never a file's contents.
 */
function diffusersSets(files: SizedFile[]): FileSet[] {
  const index = files.find((f) => f.path === 'model_index.json');
  if (!index) return [];
  const exported = (folder: string) =>
    EXPORT_FOLDER.test(folder) ||
    (files.some((f) => f.path.startsWith(folder + '/') && EXPORT_WEIGHTS.test(f.path)) && !firstWeights(files, folder, ['diffusion_pytorch_model', 'model']).found.length);
  const folders = [...new Set(files.filter((f) => f.path.split('/').length === 2).map((f) => dirname(f.path)))].filter((folder) => !exported(folder)).sort();
  const pick = (variant?: string) => {
    const chosen: SizedFile[] = [index, ...topLevelCode(files)];
    let usedVariant = false;
    for (const folder of folders) {
      const configs = files.filter((f) => dirname(f.path) === folder && /\.(json|txt|model|py)$/.test(f.path) && !/\.index(\.\w+)?\.json$/.test(f.path));
      const { found, variant: isVariant } = firstWeights(files, folder, ['diffusion_pytorch_model', 'model'], variant);
      usedVariant ||= isVariant;
      chosen.push(...configs, ...found);
    }
    return { chosen, usedVariant };
  };
  const fp16 = pick('fp16');
  const full = pick();
  return [...(fp16.usedVariant ? [makeSet('diffusers-fp16', 'diffusers (fp16 variant)', fp16.chosen)] : []), makeSet('diffusers', 'diffusers', full.chosen)];
}

/**
 * sentence-transformers: modules.json, its configs, the transformer's files, the top-level code (a
 * remote-code embedding model's configuration_*.py, modeling_*.py) and the numbered module folders.
 */
function sentenceTransformersSets(files: SizedFile[]): FileSet[] {
  if (!files.some((f) => f.path === 'modules.json')) return [];
  const extra = new Set(['modules.json', 'config_sentence_transformers.json', 'sentence_bert_config.json']);
  const chosen = [...configAndTokenizer(files, '', extra), ...topLevelCode(files), ...firstWeights(files, '', ['model']).found];
  const modules = [...new Set(files.map((f) => dirname(f.path)).filter((d) => /^\d+_\w+$/.test(d)))];
  for (const folder of modules) {
    chosen.push(...files.filter((f) => dirname(f.path) === folder && !WEIGHTS.test(f.path)), ...firstWeights(files, folder, ['model']).found);
  }
  return [makeSet('sentence-transformers', 'sentence-transformers', chosen)];
}

/** One set per GGUF quantisation (a file, or the parts of a split file), and per GGML .bin file. */
function quantisationSets(files: SizedFile[]): FileSet[] {
  const groups = new Map<string, SizedFile[]>();
  for (const file of files) {
    const gguf = /^(.*?)(-\d{5}-of-\d{5})?\.gguf$/.exec(file.path);
    const ggml = /ggml.*\.bin$/i.test(file.path) ? file.path : undefined;
    const key = gguf ? gguf[1] + '.gguf' : ggml;
    if (key) groups.set(key, [...(groups.get(key) ?? []), file]);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, group]) => {
    const quant = /(I?Q\d[\w]*|F16|BF16|F32|fp16|q\d_\w+)/i.exec(basename(key))?.[1] ?? basename(key);
    const kind = key.endsWith('.gguf') ? 'GGUF' : 'GGML';
    return makeSet(`${kind.toLowerCase()}-${key}`, `${kind} ${quant} (${basename(key)})`, group);
  });
}

/**
 * The file sets a library loads from a repository holding `files`; `library` (the Hub's
 * library_name, when known) decides between readings of the same names (timm vs transformers).
 * Sets that would hold every file of the repository are left out: the whole-repository line says it.
 */
export function fileSets(files: SizedFile[], library?: string): FileSet[] {
  const sets = [...diffusersSets(files), ...sentenceTransformersSets(files), ...(files.some((f) => f.path === 'model_index.json') ? [] : transformersSets(files, library)), ...quantisationSets(files)];
  return sets.filter((set) => set.paths.length > 0 && set.paths.length < files.length);
}

/**
 * A set split for its COPY lines: `named`, the set with only the paths a COPY source names exactly
 * (dockerfile.ts `unnamed`, against the image's `list`), and `left`, the others with why.
 */
export function namedPart(set: FileSet, list: Listing): { named: FileSet; left: { path: string; why: string }[] } {
  const left = set.paths.flatMap((path) => {
    const why = unnamed(path, list);
    return why ? [{ path, why }] : [];
  });
  return { named: { ...set, paths: set.paths.filter((p) => !left.some((l) => l.path === p)) }, left };
}

/** A set as COPY lines, one per folder, each into the same folder under the build's working directory. */
export function setLines(set: FileSet, line: (paths: string[], dest: string) => string): string[] {
  const byFolder = new Map<string, string[]>();
  for (const p of set.paths) byFolder.set(dirname(p), [...(byFolder.get(dirname(p)) ?? []), p]);
  return [...byFolder.entries()].map(([folder, paths]) => line(paths, folder ? `./${folder}/` : './'));
}

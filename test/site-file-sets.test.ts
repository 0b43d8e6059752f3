// "Copy only what you load": the file-set rules on file lists shaped like real Hugging Face
// repositories of each library (names as the Hub lists them; sizes scaled down).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileSets, namedPart, setLines, type SizedFile } from '../site/lib/file-sets.ts';
import { copyLine, listing } from '../site/lib/dockerfile.ts';

const repo = (spec: Record<string, number>): SizedFile[] => Object.entries(spec).map(([path, size]) => ({ path, size }));
const byId = (files: SizedFile[], library?: string) => Object.fromEntries(fileSets(files, library).map((s) => [s.id, s.paths]));

// google-bert/bert-base-uncased: the same weights in six formats, plus onnx/ and coreml/.
const BERT = repo({
  '.gitattributes': 1, 'LICENSE': 11, 'README.md': 10, 'config.json': 570, 'coreml/fill-mask/float32_model.mlpackage/Data/com.apple.CoreML/model.mlmodel': 164,
  'flax_model.msgpack': 438, 'model.onnx': 532, 'model.safetensors': 440, 'pytorch_model.bin': 440, 'rust_model.ot': 534, 'tf_model.h5': 536,
  'tokenizer.json': 466, 'tokenizer_config.json': 48, 'vocab.txt': 232,
});

// meta-llama-style sharded safetensors with a .bin copy and an original/ folder.
const LLAMA = repo({
  'README.md': 1, 'config.json': 1, 'generation_config.json': 1, 'model-00001-of-00002.safetensors': 5000, 'model-00002-of-00002.safetensors': 3000,
  'model.safetensors.index.json': 2, 'pytorch_model-00001-of-00002.bin': 5000, 'pytorch_model-00002-of-00002.bin': 3000, 'pytorch_model.bin.index.json': 2,
  'original/consolidated.00.pth': 8000, 'original/params.json': 1, 'original/tokenizer.model': 2, 'special_tokens_map.json': 1, 'tokenizer.json': 9, 'tokenizer_config.json': 5,
});

// runwayml/stable-diffusion-v1-5: root checkpoints beside the diffusers folders, fp16 and fp32, .bin and safetensors.
const SD = repo({
  'README.md': 1, 'model_index.json': 1, 'v1-5-pruned.ckpt': 7700, 'v1-5-pruned-emaonly.ckpt': 4270, 'v1-5-pruned-emaonly.safetensors': 4270,
  'feature_extractor/preprocessor_config.json': 1,
  'safety_checker/config.json': 5, 'safety_checker/model.fp16.safetensors': 608, 'safety_checker/model.safetensors': 1216, 'safety_checker/pytorch_model.bin': 1216, 'safety_checker/pytorch_model.fp16.bin': 608,
  'scheduler/scheduler_config.json': 1,
  'text_encoder/config.json': 1, 'text_encoder/model.fp16.safetensors': 246, 'text_encoder/model.safetensors': 492, 'text_encoder/pytorch_model.bin': 492,
  'tokenizer/merges.txt': 525, 'tokenizer/special_tokens_map.json': 1, 'tokenizer/tokenizer_config.json': 1, 'tokenizer/vocab.json': 1060,
  'unet/config.json': 1, 'unet/diffusion_pytorch_model.bin': 3440, 'unet/diffusion_pytorch_model.fp16.safetensors': 1720, 'unet/diffusion_pytorch_model.non_ema.bin': 3440, 'unet/diffusion_pytorch_model.safetensors': 3440,
  'vae/config.json': 1, 'vae/diffusion_pytorch_model.bin': 335, 'vae/diffusion_pytorch_model.fp16.safetensors': 167, 'vae/diffusion_pytorch_model.safetensors': 335,
});

// sentence-transformers/all-MiniLM-L6-v2.
const MINILM = repo({
  '1_Pooling/config.json': 1, 'README.md': 10, 'config.json': 1, 'config_sentence_transformers.json': 1, 'data_config.json': 39, 'model.safetensors': 90,
  'modules.json': 1, 'onnx/model.onnx': 90, 'onnx/model_O1.onnx': 90, 'pytorch_model.bin': 90, 'rust_model.ot': 90, 'sentence_bert_config.json': 1,
  'special_tokens_map.json': 1, 'tf_model.h5': 91, 'tokenizer.json': 466, 'tokenizer_config.json': 1, 'train_script.py': 13, 'vocab.txt': 232,
});

// timm/resnet50.a1_in1k.
const TIMM = repo({ 'README.md': 5, 'config.json': 1, 'model.safetensors': 102, 'pytorch_model.bin': 102 });

// TheBloke/Llama-2-7B-GGUF: one file per quantisation; one split in two parts.
const GGUF = repo({
  'README.md': 1, 'config.json': 1, 'llama-2-7b.Q2_K.gguf': 2830, 'llama-2-7b.Q4_K_M.gguf': 4080, 'llama-2-7b.Q8_0.gguf': 7160,
  'llama-2-7b.F16-00001-of-00002.gguf': 7000, 'llama-2-7b.F16-00002-of-00002.gguf': 6000,
});

// THUDM/chatglm2-6b: remote code (trust_remote_code), sharded .bin weights.
const CHATGLM = repo({
  'MODEL_LICENSE': 4, 'README.md': 8, 'config.json': 1, 'configuration_chatglm.py': 2, 'modeling_chatglm.py': 50, 'quantization.py': 15,
  'pytorch_model-00001-of-00002.bin': 9000, 'pytorch_model-00002-of-00002.bin': 3000, 'pytorch_model.bin.index.json': 20, 'tokenization_chatglm.py': 10,
  'tokenizer.model': 1000, 'tokenizer_config.json': 1,
});

// mosaicml/mpt-7b-instruct: remote code split over many modules the modeling file imports.
const MPT = repo({
  'README.md': 9, 'adapt_tokenizer.py': 2, 'attention.py': 17, 'blocks.py': 2, 'config.json': 1, 'configuration_mpt.py': 9, 'custom_embedding.py': 1,
  'flash_attn_triton.py': 28, 'generation_config.json': 1, 'hf_prefixlm_converter.py': 27, 'meta_init_context.py': 3, 'modeling_mpt.py': 18, 'norm.py': 2,
  'param_init_fns.py': 12, 'pytorch_model-00001-of-00002.bin': 9000, 'pytorch_model-00002-of-00002.bin': 4000, 'pytorch_model.bin.index.json': 16,
  'special_tokens_map.json': 1, 'tokenizer.json': 2000, 'tokenizer_config.json': 1,
});

// stabilityai/stable-diffusion-xl-base-1.0: ONNX, OpenVINO and Flax copies beside the diffusers
// weights, ONNX-only folders (vae_decoder/, vae_encoder/), and an onnx/ export folder.
const SDXL = repo({
  'README.md': 1, 'model_index.json': 1, 'sd_xl_base_1.0.safetensors': 6900, 'sd_xl_offset_example-lora_1.0.safetensors': 49,
  'scheduler/scheduler_config.json': 1,
  'text_encoder/config.json': 1, 'text_encoder/flax_model.msgpack': 492, 'text_encoder/model.fp16.safetensors': 246, 'text_encoder/model.onnx': 492, 'text_encoder/model.safetensors': 492, 'text_encoder/openvino_model.bin': 492, 'text_encoder/openvino_model.xml': 1,
  'tokenizer/merges.txt': 525, 'tokenizer/special_tokens_map.json': 1, 'tokenizer/tokenizer_config.json': 1, 'tokenizer/vocab.json': 1060,
  'unet/config.json': 1, 'unet/diffusion_flax_model.msgpack': 10270, 'unet/diffusion_pytorch_model.fp16.safetensors': 5140, 'unet/diffusion_pytorch_model.safetensors': 10270, 'unet/model.onnx': 7, 'unet/model.onnx_data': 10270, 'unet/openvino_model.bin': 10270, 'unet/openvino_model.xml': 1,
  'vae/config.json': 1, 'vae/diffusion_flax_model.msgpack': 335, 'vae/diffusion_pytorch_model.fp16.safetensors': 167, 'vae/diffusion_pytorch_model.safetensors': 335,
  'vae_decoder/config.json': 1, 'vae_decoder/model.onnx': 198, 'vae_decoder/openvino_model.bin': 198, 'vae_decoder/openvino_model.xml': 1,
  'vae_encoder/config.json': 1, 'vae_encoder/model.onnx': 137, 'vae_encoder/openvino_model.bin': 137, 'vae_encoder/openvino_model.xml': 1,
  'onnx/config.json': 1, 'onnx/model.onnx': 7, 'openvino/config.json': 1, 'coreml/config.json': 1, 'flax/config.json': 1,
});

describe('file sets per library', () => {
  test('transformers with remote code: every top-level .py (configuration_, modeling_, tokenization_ and the modules they import)', () => {
    assert.deepEqual(byId(CHATGLM), {
      'transformers-pytorch': ['config.json', 'configuration_chatglm.py', 'modeling_chatglm.py', 'pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin', 'pytorch_model.bin.index.json', 'quantization.py', 'tokenization_chatglm.py', 'tokenizer.model', 'tokenizer_config.json'],
    });
    const mpt = byId(MPT)['transformers-pytorch'];
    assert.deepEqual(mpt.filter((p) => p.endsWith('.py')), MPT.map((f) => f.path).filter((p) => p.endsWith('.py')));
    assert.deepEqual(mpt.filter((p) => !p.endsWith('.py')), ['config.json', 'generation_config.json', 'pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin', 'pytorch_model.bin.index.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    // timm loads no remote code; a .py below the top level is no transformers module.
    assert.deepEqual(byId([...TIMM, { path: 'convert.py', size: 1 }], 'timm')['timm-safetensors'], ['config.json', 'model.safetensors']);
    assert.ok(!byId([...BERT, { path: 'scripts/train.py', size: 1 }])['transformers-safetensors'].includes('scripts/train.py'));
  });

  test('diffusers: export folders (onnx/, openvino/, coreml/, flax/) and ONNX-only folders are no components', () => {
    const sets = byId(SDXL);
    const components = ['model_index.json', 'scheduler/scheduler_config.json', 'text_encoder/config.json', 'tokenizer/merges.txt', 'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json', 'tokenizer/vocab.json', 'unet/config.json', 'vae/config.json'];
    assert.deepEqual(sets['diffusers-fp16'], [...components, 'text_encoder/model.fp16.safetensors', 'unet/diffusion_pytorch_model.fp16.safetensors', 'vae/diffusion_pytorch_model.fp16.safetensors'].sort());
    assert.deepEqual(sets['diffusers'], [...components, 'text_encoder/model.safetensors', 'unet/diffusion_pytorch_model.safetensors', 'vae/diffusion_pytorch_model.safetensors'].sort());
    // A folder of exported weights is one only while it has no weights diffusers loads.
    const withTorch = byId([...SDXL, { path: 'vae_decoder/diffusion_pytorch_model.safetensors', size: 5 }])['diffusers'];
    assert.ok(withTorch.includes('vae_decoder/config.json') && withTorch.includes('vae_decoder/diffusion_pytorch_model.safetensors'));
  });

  test('transformers: config, tokenizer and safetensors only, none of the five other copies', () => {
    assert.deepEqual(byId(BERT), { 'transformers-safetensors': ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'] });
  });

  test('transformers, sharded: every shard and the index, not the .bin shards nor original/', () => {
    assert.deepEqual(byId(LLAMA), {
      'transformers-safetensors': ['config.json', 'generation_config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'],
    });
  });

  test('transformers without safetensors falls back to pytorch_model.bin', () => {
    const files = BERT.filter((f) => f.path !== 'model.safetensors');
    assert.deepEqual(byId(files)['transformers-pytorch'], ['config.json', 'pytorch_model.bin', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
  });

  test('diffusers: the fp16 variant per component (fp32 where a component has none), no root checkpoints', () => {
    const sets = byId(SD);
    const components = ['feature_extractor/preprocessor_config.json', 'model_index.json', 'safety_checker/config.json', 'scheduler/scheduler_config.json', 'text_encoder/config.json', 'tokenizer/merges.txt', 'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json', 'tokenizer/vocab.json', 'unet/config.json', 'vae/config.json'];
    assert.deepEqual(sets['diffusers-fp16'], [...components, 'safety_checker/model.fp16.safetensors', 'text_encoder/model.fp16.safetensors', 'unet/diffusion_pytorch_model.fp16.safetensors', 'vae/diffusion_pytorch_model.fp16.safetensors'].sort());
    assert.deepEqual(sets['diffusers'], [...components, 'safety_checker/model.safetensors', 'text_encoder/model.safetensors', 'unet/diffusion_pytorch_model.safetensors', 'vae/diffusion_pytorch_model.safetensors'].sort());
    assert.equal(Object.keys(sets).length, 2, 'no transformers set for a diffusers repository');
  });

  test('diffusers: sharded fp16 weights come with their variant index', () => {
    const files = repo({ 'model_index.json': 1, 'transformer/config.json': 1, 'transformer/diffusion_pytorch_model.fp16-00001-of-00002.safetensors': 10, 'transformer/diffusion_pytorch_model.fp16-00002-of-00002.safetensors': 5, 'transformer/diffusion_pytorch_model.safetensors.index.fp16.json': 1, 'transformer/diffusion_pytorch_model.safetensors.index.json': 1, 'transformer/diffusion_pytorch_model-00001-of-00002.safetensors': 20, 'transformer/diffusion_pytorch_model-00002-of-00002.safetensors': 10 });
    assert.deepEqual(byId(files)['diffusers-fp16'], ['model_index.json', 'transformer/config.json', 'transformer/diffusion_pytorch_model.fp16-00001-of-00002.safetensors', 'transformer/diffusion_pytorch_model.fp16-00002-of-00002.safetensors', 'transformer/diffusion_pytorch_model.safetensors.index.fp16.json']);
    assert.deepEqual(byId(files)['diffusers'], ['model_index.json', 'transformer/config.json', 'transformer/diffusion_pytorch_model-00001-of-00002.safetensors', 'transformer/diffusion_pytorch_model-00002-of-00002.safetensors', 'transformer/diffusion_pytorch_model.safetensors.index.json']);
  });

  test('sentence-transformers: modules.json, its configs, the pooling module and one copy of the weights', () => {
    // train_script.py too: names alone cannot tell a training script from remote code (a few KB).
    assert.deepEqual(byId(MINILM)['sentence-transformers'], ['1_Pooling/config.json', 'config.json', 'config_sentence_transformers.json', 'model.safetensors', 'modules.json', 'sentence_bert_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'train_script.py', 'vocab.txt']);
  });

  test('sentence-transformers: a remote-code embedding model\'s top-level code (trust_remote_code)', () => {
    // nomic-ai/nomic-embed-text-v1: one module of its own beside the weights.
    const NOMIC = repo({
      '.gitattributes': 1, '1_Pooling/config.json': 1, 'README.md': 10, 'config.json': 1, 'config_sentence_transformers.json': 1, 'configuration_hf_nomic_bert.py': 3, 'model.safetensors': 547,
      'modules.json': 1, 'onnx/model.onnx': 547, 'onnx/model_quantized.onnx': 138, 'pytorch_model.bin': 547, 'sentence_bert_config.json': 1, 'special_tokens_map.json': 1, 'tokenizer.json': 711, 'tokenizer_config.json': 1, 'vocab.txt': 231,
    });
    assert.deepEqual(byId(NOMIC)['sentence-transformers'], ['1_Pooling/config.json', 'config.json', 'config_sentence_transformers.json', 'configuration_hf_nomic_bert.py', 'model.safetensors', 'modules.json', 'sentence_bert_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
    // nvidia/NV-Embed-v2: configuration_nvembed.py and modeling_nvembed.py beside sharded weights.
    const NV_EMBED = repo({
      'README.md': 10, 'config.json': 1, 'config_sentence_transformers.json': 1, 'configuration_nvembed.py': 3, 'instructions.json': 2, 'model-00001-of-00002.safetensors': 5000, 'model-00002-of-00002.safetensors': 3000,
      'model.safetensors.index.json': 2, 'modeling_nvembed.py': 20, 'modules.json': 1, 'sentence_bert_config.json': 1, 'special_tokens_map.json': 1, 'tokenizer.json': 1800, 'tokenizer.model': 493, 'tokenizer_config.json': 1,
    });
    assert.deepEqual(byId(NV_EMBED)['sentence-transformers'], ['config.json', 'config_sentence_transformers.json', 'configuration_nvembed.py', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'modeling_nvembed.py', 'modules.json', 'sentence_bert_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer.model', 'tokenizer_config.json']);
  });

  test('every set of a repository with code of its own holds that code, whatever its module names', () => {
    // The kind, over generated names: top-level modules (remote code, a custom pipeline.py) and
    // diffusers components' modules (a custom unet/my_unet_model.py).
    for (const stem of ['pipeline', 'modeling_x', 'configuration_some_model', 'helpers', 'a.b']) {
      const code = `${stem}.py`;
      const st = fileSets([...MINILM, { path: code, size: 1 }]);
      assert.ok(st.length > 0 && st.every((set) => set.paths.includes(code)), `sentence-transformers sets hold ${code}`);
      const component = `unet/${stem}.py`;
      const sd = fileSets([...SD, { path: code, size: 1 }, { path: component, size: 1 }]);
      assert.deepEqual(sd.map((set) => set.id), ['diffusers-fp16', 'diffusers']);
      for (const set of sd) assert.ok(set.paths.includes(code) && set.paths.includes(component), `${set.id} holds ${code} and ${component}`);
    }
  });

  test('diffusers: a custom pipeline.py and a custom component\'s module come with the components', () => {
    // A community pipeline repository: its own pipeline.py, and a unet whose class lives in unet/my_unet_model.py.
    const CUSTOM = repo({
      'README.md': 1, 'model_index.json': 1, 'pipeline.py': 4, 'sd-custom.ckpt': 4000, 'scheduler/scheduler_config.json': 1,
      'text_encoder/config.json': 1, 'text_encoder/model.safetensors': 492, 'tokenizer/tokenizer.json': 2,
      'unet/config.json': 1, 'unet/diffusion_pytorch_model.safetensors': 3440, 'unet/my_unet_model.py': 5, 'vae/config.json': 1, 'vae/diffusion_pytorch_model.safetensors': 335,
    });
    assert.deepEqual(byId(CUSTOM), {
      diffusers: ['model_index.json', 'pipeline.py', 'scheduler/scheduler_config.json', 'text_encoder/config.json', 'text_encoder/model.safetensors', 'tokenizer/tokenizer.json', 'unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'unet/my_unet_model.py', 'vae/config.json', 'vae/diffusion_pytorch_model.safetensors'],
    });
  });

  test('timm: config.json and model.safetensors, when the Hub says the library is timm', () => {
    assert.deepEqual(byId(TIMM, 'timm'), { 'timm-safetensors': ['config.json', 'model.safetensors'] });
  });

  test('GGUF: one set per quantisation, a split file as one set', () => {
    const sets = fileSets(GGUF);
    assert.deepEqual(sets.map((s) => [s.title, s.paths, s.bytes]), [
      ['GGUF F16 (llama-2-7b.F16.gguf)', ['llama-2-7b.F16-00001-of-00002.gguf', 'llama-2-7b.F16-00002-of-00002.gguf'], 13000],
      ['GGUF Q2_K (llama-2-7b.Q2_K.gguf)', ['llama-2-7b.Q2_K.gguf'], 2830],
      ['GGUF Q4_K_M (llama-2-7b.Q4_K_M.gguf)', ['llama-2-7b.Q4_K_M.gguf'], 4080],
      ['GGUF Q8_0 (llama-2-7b.Q8_0.gguf)', ['llama-2-7b.Q8_0.gguf'], 7160],
    ]);
  });

  test('bytes are the sum of the set; a set holding the whole repository is left out', () => {
    const [set] = fileSets(BERT);
    assert.equal(set.bytes, 570 + 440 + 466 + 48 + 232);
    assert.deepEqual(fileSets(repo({ 'config.json': 1, 'model.safetensors': 2 })), []);
    assert.deepEqual(fileSets(repo({ 'README.md': 1, 'notes.txt': 2 })), []);
  });

  test('lines: one COPY per folder into the same folder, every path escaped', () => {
    const files = repo({ 'model_index.json': 1, 'unet [v2]/config.json': 1, 'unet [v2]/diffusion_pytorch_model.safetensors': 9, 'vae/config.json': 1, 'vae/diffusion_pytorch_model.safetensors': 3, 'extra.ckpt': 50 });
    const [set] = fileSets(files);
    assert.deepEqual(setLines(set, (paths, dest) => copyLine('r', paths, dest)), [
      'COPY --link --from=r /model_index.json ./',
      'COPY --link --from=r ["/unet [[]v2]/config.json", "/unet [[]v2]/diffusion_pytorch_model.safetensors", "./unet [v2]/"]',
      'COPY --link --from=r /vae/config.json /vae/diffusion_pytorch_model.safetensors ./vae/',
    ]);
  });

  test('a path no COPY source names exactly in buildah and BuildKit is left out of the lines, with why', () => {
    const files = repo({ 'model_index.json': 1, 'unet [v2]/config.json': 1, 'unet [v2]/diffusion_pytorch_model.safetensors': 9, 'vae/config.json': 1, 'vae/diffusion_pytorch_model.safetensors': 3, 'a\\b-Q4_K_M.gguf': 5, 'extra.ckpt': 50 });
    const list = listing(files.map((f) => f.path));
    const [diffusers] = fileSets(files);
    const { named, left } = namedPart(diffusers, list);
    assert.deepEqual(named.paths, ['model_index.json', 'vae/config.json', 'vae/diffusion_pytorch_model.safetensors']);
    assert.deepEqual(left.map((l) => l.path), ['unet [v2]/config.json', 'unet [v2]/diffusion_pytorch_model.safetensors']);
    assert.match(left[0].why, /buildah reads the path it matched as a pattern, and this name read so does not match itself/);
    const gguf = fileSets(files).find((s) => s.id.startsWith('gguf-'))!;
    assert.deepEqual(namedPart(gguf, list).named.paths, []);
    assert.match(namedPart(gguf, list).left[0].why, /backslash/);
  });
});

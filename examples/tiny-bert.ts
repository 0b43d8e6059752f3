// The example model `npm start` builds when the store is empty: a tiny BERT in real Hugging Face
// layout (config, tokenizer, vocabulary, safetensors weights), generated deterministically so it
// needs no download and always gives the same image digest.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { safetensors } from './safetensors.ts';

export const EXAMPLE_NAME = 'depot-ai/tiny-bert';

const HIDDEN = 32;
const LAYERS = 2;
const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const WORDS = 'the of and to a in is it you that he was for on are with as his they be at one have this from or had by'.split(' ');

function vocabulary(): string[] {
  const letters = 'abcdefghijklmnopqrstuvwxyz'.split('');
  return [...SPECIAL, ...WORDS, ...letters, ...letters.map((l) => `##${l}`)];
}

function files(): Record<string, string | Buffer> {
  const vocab = vocabulary();
  const tensors: Record<string, number[]> = {
    'embeddings.word_embeddings.weight': [vocab.length, HIDDEN],
    'embeddings.position_embeddings.weight': [64, HIDDEN],
  };
  for (let i = 0; i < LAYERS; i++) {
    for (const part of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      tensors[`encoder.layer.${i}.${part}.weight`] = [HIDDEN, HIDDEN];
    }
    tensors[`encoder.layer.${i}.intermediate.dense.weight`] = [4 * HIDDEN, HIDDEN];
    tensors[`encoder.layer.${i}.output.dense.weight`] = [HIDDEN, 4 * HIDDEN];
  }
  const config = {
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_size: HIDDEN,
    num_hidden_layers: LAYERS,
    num_attention_heads: 2,
    intermediate_size: 4 * HIDDEN,
    max_position_embeddings: 64,
    vocab_size: vocab.length,
    torch_dtype: 'float16',
  };
  const tokenizer = {
    version: '1.0',
    normalizer: { type: 'BertNormalizer', lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
  };
  return {
    'README.md': `# ${EXAMPLE_NAME}\n\nA tiny, randomly initialised BERT that ships with depot.ai as its example model.\n`,
    'config.json': JSON.stringify(config, null, 2) + '\n',
    'tokenizer.json': JSON.stringify(tokenizer) + '\n',
    'tokenizer_config.json': JSON.stringify({ do_lower_case: true, model_max_length: 64 }, null, 2) + '\n',
    'vocab.txt': vocab.join('\n') + '\n',
    'model.safetensors': safetensors(tensors),
  };
}

/** Write the example into `dir`; returns a revision (a sha1 of the content, 40 hex like a commit). */
export function writeExampleModel(dir: string): string {
  const revision = createHash('sha1');
  for (const [name, content] of Object.entries(files())) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
    revision.update(name).update(content);
  }
  return revision.digest('hex');
}

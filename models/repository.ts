// Facts about a Hugging Face repository that every part shares: where the Hub is (as the
// Hugging Face tools read it from the environment) and which files are repository plumbing.

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface HubSettings {
  hubUrl: string;
  token?: string;
}

/** HF_ENDPOINT and HF_TOKEN, as the Hugging Face tools read them. */
export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  return { hubUrl: (env.HF_ENDPOINT || DEFAULT_HUB_URL).replace(/\/+$/, ''), token: env.HF_TOKEN || undefined };
}

/** Files that are repository plumbing, not part of the model. */
export function isExcluded(relativePath: string): boolean {
  const parts = relativePath.split('/');
  return parts.includes('.git') || parts[parts.length - 1] === '.gitattributes';
}

// Signing an in-toto statement into a Sigstore bundle (a DSSE envelope plus verification material)
// and checking one, through sigstore-js. Two ways to sign:
// - keyless: a Fulcio certificate for the CI's OIDC identity (GitHub Actions `id-token: write`)
//   and a Rekor entry: `sigstore.attest`; verified against Sigstore's trusted root (TUF).
// - a local ECDSA P-256 key (node:crypto): the bundle carries a public-key hint (the sha256 of the
//   key's SPKI DER) and no log entry; verified offline by @sigstore/verify with that key.
import { createHash, createPrivateKey, createPublicKey, sign as signBytes, type KeyObject } from 'node:crypto';
import { bundleFromJSON, bundleToJSON, envelopeFromJSON, type SerializedBundle } from '@sigstore/bundle';
import { DSSEBundleBuilder, type Signature, type Signer } from '@sigstore/sign';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { attest, verify as verifyKeyless } from 'sigstore';
import { IN_TOTO_PAYLOAD_TYPE, ProvenanceError } from './provenance.ts';

/** The OIDC issuer of GitHub Actions' keyless identities. */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/** How to verify: the signer's public key, or the keyless identity (a workflow URI) to expect. */
export type TrustPolicy = { key: KeyObject } | { identity: string; issuer?: string };

/** The hint naming a public key in a bundle: hex sha256 of its SPKI DER (as cosign's key ids). */
export function keyHint(key: KeyObject): string {
  return createHash('sha256').update(publicOf(key).export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The public key in a PEM text (a public key, or a private key whose public half is taken). Throws ProvenanceError when it holds none. */
export function publicKeyFromPem(pem: string): KeyObject {
  try {
    return pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  } catch {
    throw new ProvenanceError('not a PEM public key');
  }
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

class LocalKeySigner implements Signer {
  constructor(private readonly key: KeyObject) {}

  async sign(data: Buffer): Promise<Signature> {
    const publicKey = publicOf(this.key).export({ type: 'spki', format: 'pem' }).toString();
    return { signature: signBytes('sha256', data, this.key), key: { $case: 'publicKey', publicKey, hint: keyHint(this.key) } };
  }
}

/**
 * A Sigstore bundle (JSON) holding `statement` in a DSSE envelope of type application/vnd.in-toto+json:
 * signed with `privateKey` (ECDSA P-256) when given, else keyless through the CI's OIDC token
 * (throws when there is none, e.g. outside GitHub Actions with `id-token: write`).
 */
export async function signStatement(statement: unknown, privateKey?: KeyObject): Promise<SerializedBundle> {
  const payload = Buffer.from(JSON.stringify(statement));
  if (!privateKey) return attest(payload, IN_TOTO_PAYLOAD_TYPE);
  const bundle = await new DSSEBundleBuilder({ signer: new LocalKeySigner(privateKey), witnesses: [] }).create({ data: payload, type: IN_TOTO_PAYLOAD_TYPE });
  return bundleToJSON(bundle);
}

/**
 * Check a bundle's signature under `policy` and return the DSSE payload (the statement's bytes).
 * Throws ProvenanceError with one line saying what failed.
 */
export async function verifiedPayload(json: unknown, policy: TrustPolicy): Promise<Buffer> {
  let bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (error) {
    throw new ProvenanceError(`not a Sigstore bundle: ${(error as Error).message}`);
  }
  if (bundle.content.$case !== 'dsseEnvelope') throw new ProvenanceError('the Sigstore bundle holds no DSSE envelope');
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new ProvenanceError(`the DSSE payload is ${envelope.payloadType}, not an in-toto statement`);
  try {
    if ('key' in policy) {
      const hint = keyHint(policy.key);
      const trust = toTrustMaterial(EMPTY_TRUSTED_ROOT, (wanted) => {
        if (wanted !== hint) throw new Error(`signed by key ${wanted || '(none)'}, not the given key ${hint}`);
        return { publicKey: publicOf(policy.key), validFor: () => true };
      });
      // No transparency log or timestamp authority offline: the key alone is the trust.
      new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, tsaThreshold: 0 }).verify(toSignedEntity(bundle));
    } else {
      await verifyKeyless(json as SerializedBundle, { certificateIdentityURI: policy.identity, certificateIssuer: policy.issuer ?? GITHUB_ACTIONS_ISSUER });
    }
  } catch (error) {
    throw new ProvenanceError(`the attestation's signature does not verify: ${(error as Error).message}`);
  }
  return envelopeFromJSON(bundleToJSON(bundle).dsseEnvelope!).payload;
}

/** A trusted root with no authorities: enough for bundles signed with a known key. */
const EMPTY_TRUSTED_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

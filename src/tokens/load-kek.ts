// The key-encryption key that seals signing keys at rest: GATEHOUSE_KEK (base64), or the file
// `gatehouse ca init` writes 0600 (`<pki.dir>/kek`). Without it a copy of the store cannot sign.
import { createSecretKey, type KeyObject } from 'node:crypto';
import { open } from 'node:fs/promises';
import { GatehouseError } from '../errors.js';

export const KEK_ENV = 'GATEHOUSE_KEK';
export const KEK_BYTES = 32;
/** A KEK file is one line of base64; anything much longer is not one. */
const MAX_KEK_FILE_BYTES = 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface LoadKekOptions {
  /** The KEK file (tokens.kekFile, default `<pki.dir>/kek`). */
  file?: string;
  /** Environment to read GATEHOUSE_KEK from (default process.env). It wins over the file. */
  env?: Readonly<Record<string, string | undefined>>;
}

function decode(text: string, where: string): KeyObject {
  const trimmed = text.trim();
  // Never echo the value: it is the secret.
  if (!BASE64.test(trimmed) || trimmed.length % 4 !== 0) throw new GatehouseError('ERR_TOKEN_KEK_INVALID', `${where} is not base64`);
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== KEK_BYTES) throw new GatehouseError('ERR_TOKEN_KEK_INVALID', `${where} must decode to ${KEK_BYTES} bytes, got ${bytes.length}`);
  const key = createSecretKey(bytes);
  bytes.fill(0);
  return key;
}

async function readKekFile(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new GatehouseError('ERR_TOKEN_KEK_NOT_FOUND', `${file} does not exist and ${KEK_ENV} is unset (run gatehouse ca init)`, { cause, details: { file } });
    throw new GatehouseError('ERR_TOKEN_KEK_INVALID', `cannot open ${file}: ${code ?? 'error'}`, { cause, details: { file } });
  }
  try {
    // fstat the open file, not the path, so the file checked is the file read.
    const st = await fh.stat();
    if (!st.isFile()) throw new GatehouseError('ERR_TOKEN_KEK_INVALID', `${file} is not a regular file`, { details: { file } });
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new GatehouseError('ERR_TOKEN_KEK_PERMISSIONS', `${file} has mode ${(st.mode & 0o777).toString(8)}: the KEK must not be readable by group or others (chmod 600 ${file})`, { details: { file } });
    }
    if (st.size > MAX_KEK_FILE_BYTES) throw new GatehouseError('ERR_TOKEN_KEK_INVALID', `${file} is ${st.size} bytes; a KEK file is one line of base64`, { details: { file } });
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** Loads the 32-byte KEK as a secret KeyObject (which never prints its bytes). */
export async function loadKek(options: LoadKekOptions = {}): Promise<KeyObject> {
  const env = options.env ?? process.env;
  const fromEnv = env[KEK_ENV];
  // Set but empty is a mistake (an unfilled template), not "use the file".
  if (fromEnv !== undefined) return decode(fromEnv, KEK_ENV);
  if (options.file === undefined) throw new GatehouseError('ERR_TOKEN_KEK_NOT_FOUND', `${KEK_ENV} is unset and no KEK file is configured`);
  return decode(await readKekFile(options.file), options.file);
}

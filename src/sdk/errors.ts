// The SDK's errors: the same codes Gatehouse uses (docs/errors.md, "Tokens"), without
// importing Gatehouse itself, so an upstream service pulls in only this folder and jose.

export const TOKEN_ERROR_CODES = {
  ERR_TOKEN_INVALID: 401,
  ERR_TOKEN_TOO_LARGE: 401,
  ERR_TOKEN_ALGORITHM: 401,
  ERR_TOKEN_HEADER_REFUSED: 401,
  ERR_TOKEN_UNKNOWN_KEY: 401,
  ERR_TOKEN_SIGNATURE: 401,
  ERR_TOKEN_ISSUER: 401,
  ERR_TOKEN_AUDIENCE: 401,
  ERR_TOKEN_EXPIRED: 401,
  ERR_TOKEN_NOT_YET_VALID: 401,
  ERR_TOKEN_NAMESPACE: 401,
  ERR_TOKEN_BINDING: 401,
  ERR_TOKEN_JWKS_UNAVAILABLE: 503,
} as const;

export type TokenErrorCode = keyof typeof TOKEN_ERROR_CODES;

/** A refused token (status 401) or a JWKS that cannot be had (503, retryable). Switch on `code`. */
export class TokenVerificationError extends Error {
  readonly code: TokenErrorCode;
  readonly status: number;
  readonly retryable: boolean;

  constructor(code: TokenErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenVerificationError';
    this.code = code;
    this.status = TOKEN_ERROR_CODES[code];
    this.retryable = code === 'ERR_TOKEN_JWKS_UNAVAILABLE';
  }

  toJSON(): { code: TokenErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isTokenVerificationError(err: unknown, code?: TokenErrorCode): err is TokenVerificationError {
  return err instanceof TokenVerificationError && (code === undefined || err.code === code);
}

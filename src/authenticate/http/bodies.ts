// The JSON bodies the human listener's gateway routes read, one schema each (lib/schema.ts):
// a body that does not fit is a 400 ERR_BAD_REQUEST naming the field, before any step runs.
// Keys a route does not read are ignored, as browsers' scripts may send more. The WebAuthn
// `response` stays opaque here: its ceremony checks it field by field with its own codes.
import { Type, bodyReader } from '../../lib/schema.js';

/** Where to go afterwards; its shape and host are judged by safeReturnTo (ERR_REDIRECT_REFUSED). */
const returnTo = Type.Optional(Type.Union([Type.String(), Type.Null()]));
/** A WebAuthn credential as the browser's script serialised it. */
const credential = Type.Optional(Type.Unknown());
/** A secret from a link or a code typed in: short text. */
const shortText = (maxLength: number) => Type.Optional(Type.String({ maxLength }));

export const LOGIN_START_BODY = bodyReader(Type.Object({ username: shortText(256), rd: returnTo, state: shortText(128) }));
export const WEBAUTHN_BODY = bodyReader(Type.Object({ response: credential }));
export const TOTP_BODY = bodyReader(Type.Object({ code: shortText(64) }));
export const ENROLL_BODY = bodyReader(Type.Object({ token: shortText(128), response: credential, code1: shortText(64), code2: shortText(64) }));
export const RETURN_TO_BODY = bodyReader(Type.Object({ rd: returnTo }));

// What an operator's revocation or lift names in its audit event: the kind and id, the reason,
// whether it was forced and what forcing skipped, and what it did. One place, so the CLI paths
// (src/admin/ops.ts) and the admin API record the same fields. Ids here are public (a session's
// sid, a token's jti), never a cookie or its hash.
import type { OperatorTarget } from '../contracts/audit.js';
import type { RevocationKind } from './types.js';

export interface RevokeEventArgs {
  kind: RevocationKind;
  id: string;
  reason?: string | undefined;
  force?: boolean | undefined;
}

/** What revoke returned, as far as the event needs it. */
export interface RevokeEventResult {
  created?: boolean | undefined;
  sessionsEnded?: number | undefined;
  subject?: string | undefined;
  forced?: string | undefined;
}

/** The person a revocation concerns: the user, or a session's owner once known. */
function personOf(kind: RevocationKind, id: string, subject: string | undefined): { user?: string } {
  if (kind === 'user') return { user: id };
  return subject !== undefined ? { user: subject } : {};
}

export function revokeTarget(args: RevokeEventArgs, result?: RevokeEventResult): OperatorTarget {
  return {
    ...personOf(args.kind, args.id, result?.subject),
    target: `${args.kind}:${args.id}`,
    fields: {
      'gatehouse.revocation_kind': args.kind,
      'gatehouse.revocation_id': args.id,
      'gatehouse.revocation_reason': args.reason ?? 'unspecified',
      'gatehouse.revocation_force': args.force === true,
      ...(result?.forced !== undefined ? { 'gatehouse.revocation_forced': result.forced } : {}),
      ...(result?.created !== undefined ? { 'gatehouse.revocation_created': result.created } : {}),
      ...(result?.sessionsEnded !== undefined ? { 'gatehouse.sessions_ended': result.sessionsEnded } : {}),
    },
  };
}

export interface LiftEventArgs {
  kind: RevocationKind;
  id: string;
  reason?: string | undefined;
}

/** What the lift deleted, as far as the event needs it. */
export interface LiftEventResult {
  revokedAt: string;
  by: string;
  subject?: string | undefined;
}

export function liftTarget(args: LiftEventArgs, lifted?: LiftEventResult): OperatorTarget {
  return {
    ...personOf(args.kind, args.id, lifted?.subject),
    target: `${args.kind}:${args.id}`,
    fields: {
      'gatehouse.revocation_kind': args.kind,
      'gatehouse.revocation_id': args.id,
      'gatehouse.lift_reason': args.reason ?? 'unspecified',
      ...(lifted !== undefined ? { 'gatehouse.revoked_at': lifted.revokedAt, 'gatehouse.revoked_by': lifted.by } : {}),
    },
  };
}

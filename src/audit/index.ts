// Audit: the hash chain, signed checkpoints, verify, query, export and "state at" (DESIGN.md, "Audit").
//
// The gateway wires:
//   const audit = await AuditWriter.open({ store, replica, clock, kek, checkpointEvery, checkpointIntervalMs, spoolDir, onError });
//   audit.append(event)            synchronous; never waits on the store
//   auditKeysJwks(store)           body of GET /.well-known/gatehouse-audit-keys.json
//   queryAudit(store, filters, { cursor, limit }) -> { events, nextCursor }   for the admin API
export { AuditWriter, type AuditWriterOptions, type AuditWriterStats } from './writer.js';
export { AUDIT_PREFIX, AUDIT_HEAD_PREFIX, CHECKPOINT_PREFIX, GENESIS, auditKey, checkpointKey, headKey, chainHash, decodeRecord, type ChainRecord } from './chain.js';
export { canonicalJson } from './lib/canonical-json.js';
export { auditKeysJwks, ensureAuditKey, AUDIT_KEYS_PATH, AUDIT_KEY_PREFIX, type AuditPublicJwk } from './audit-key.js';
export { signCheckpoint, verifyCheckpoint, type CheckpointPayload, type Witness } from './checkpoint.js';
export { verifyAudit, describeChain, listChains, type VerifyReport, type ChainReport, type ChainBreak, type BreakKind } from './verify.js';
export { parseReceipt, formatReceipt, RECEIPT_FORMAT, RECEIPT_VERSION, type AuditReceipt, type ReceiptChain } from './receipt.js';
export { AUDIT_FILTER_FIELDS, queryAudit, queryAll, parseTime, matches, type AuditFilters, type AuditHit, type QueryPage } from './query.js';
export { formatCef, formatSyslog, octetFrame, jsonLine, connectSyslog, SD_ID, type SyslogTarget } from './export.js';
export { revisionAt, stateAt, type StateAt, type TimeMapping } from './at.js';

// Loading straight from a policies folder (one process, the CLI, and `policy apply`).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { GatehouseError } from '../errors.js';
import { compilePolicies, checkPolicies, formatIssue } from './compile.js';
import type { PolicyEngine } from './engine.js';
import { MODEL_CONF } from './model.js';
import type { PolicyIssue, PolicySource, PolicyState } from './types.js';

export interface PolicyDir {
  /** Every <namespace>.yaml / .yml directly in the folder (sub-folders such as tests/ are not read). */
  sources: PolicySource[];
  /** Problems with the folder itself (a model.conf that is not Gatehouse's). */
  issues: PolicyIssue[];
}

/** Reads a policies folder; fails with ERR_POLICY_NOT_FOUND when it cannot be read. */
export async function readPolicyDir(dir: string): Promise<PolicyDir> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name).sort();
  } catch (cause) {
    throw new GatehouseError('ERR_POLICY_NOT_FOUND', `cannot read the policies folder ${dir}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  const sources: PolicySource[] = [];
  const issues: PolicyIssue[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (name === 'model.conf') {
      const model = await readFile(file, 'utf8');
      if (model !== MODEL_CONF) {
        const ours = MODEL_CONF.split('\n');
        const at = model.split('\n').findIndex((l, i) => l !== ours[i]);
        issues.push({ file, line: at < 0 ? ours.length : at + 1, message: 'differs from the model Gatehouse implements; policy meaning is fixed: restore the shipped model.conf (or delete it)' });
      }
    } else if (/\.ya?ml$/.test(name)) {
      sources.push({ file, text: await readFile(file, 'utf8') });
    }
  }
  return { sources, issues };
}

/** Every problem in a folder (empty when it compiles), as structured issues. */
export async function checkPolicyDir(dir: string): Promise<PolicyIssue[]> {
  const { sources, issues } = await readPolicyDir(dir);
  return [...issues, ...checkPolicies(sources).issues];
}

/** Loads and compiles a folder; throws ERR_POLICY_INVALID listing every `file:line: message`. */
export async function loadPolicyDir(dir: string, version = 1): Promise<PolicyState> {
  const { sources, issues } = await readPolicyDir(dir);
  if (issues.length > 0) {
    const lines = issues.map(formatIssue);
    throw new GatehouseError('ERR_POLICY_INVALID', `${issues.length} problem(s) in the policies:\n${lines.join('\n')}`, { details: { issues: lines } });
  }
  return compilePolicies(sources, version);
}

/** Recompiles a folder into the engine (version + 1); a set that does not compile is refused and the old one stays. */
export async function reloadPolicyDir(engine: PolicyEngine, dir: string): Promise<PolicyState> {
  const state = await loadPolicyDir(dir, engine.version + 1);
  engine.swap(state);
  return state;
}

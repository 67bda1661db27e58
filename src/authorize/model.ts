// The casbin model Gatehouse implements. policies/model.conf must be exactly this text
// (test/authorize/model.test.ts compares them; `gatehouse policy check` refuses a folder
// whose model.conf differs), so the file an operator reads is the meaning the fast path keeps.
export const MODEL_CONF = `# Gatehouse policy model: the meaning of every policies/<namespace>.yaml.
# Gatehouse's fast path (src/authorize/fast.ts) implements exactly this model; the
# differential test (test/authorize/differential.test.ts) proves the two agree.
# Do not edit: \`gatehouse policy check\` refuses a model.conf that differs from the built-in one.
#
# Request: who calls (source namespace and service for a service; the caller's roles in the
# target namespace for a person), what it calls (target namespace and service), method, path.
#   sns, ssvc  the caller's SPIFFE namespace and service ("" for a person)
#   sroles     the person's roles for the TARGET namespace (an empty list for a service)
#   pathcase   "exact", or "case-insensitive" for a route whose upstream ignores case (routes[].paths)
# Policy line, one per (rule, from entry, path pattern):
#   rule       the rule's name;  eft: allow | deny
#   fns, fsvc  the caller's namespace and service ("*" = every service there); "" for a role line
#   frole      the role a person must hold in tns; "" for a service line
#   tns, tsvc  target namespace (the file's) and service ("*" = every service there)
#   methods    "*" (every method) or method names separated by one space
#   path       a path pattern (see pathMatch in src/authorize/path.ts)
# Paths: a line matches the path exactly (pathMatch) or folded (pathMatchFolded: each segment
# percent-decoded and case-folded, as an upstream that ignores case reads it). Deny lines always
# match folded too, so no spelling of a denied path gets past; allow lines only when the route
# says its upstream ignores case.

[request_definition]
r = sns, ssvc, sroles, tns, tsvc, method, path, pathcase

[policy_definition]
p = rule, eft, fns, fsvc, frole, tns, tsvc, methods, path

# Deny beats allow; nothing matching is a deny.
[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.tns == p.tns && (p.tsvc == "*" || r.tsvc == p.tsvc) \\
  && ((p.frole == "" && r.sns == p.fns && (p.fsvc == "*" || r.ssvc == p.fsvc)) || (p.frole != "" && roleMatch(r.sroles, p.frole))) \\
  && methodMatch(r.method, p.methods) \\
  && (pathMatch(r.path, p.path) || ((p.eft == "deny" || r.pathcase == "case-insensitive") && pathMatchFolded(r.path, p.path)))
`;

// The host a request names: its Host header lowercased, without the port (IPv6 keeps its brackets).
export function hostOnly(hostHeader: string | undefined): string {
  const h = (hostHeader ?? '').toLowerCase();
  return h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d+$/, '');
}

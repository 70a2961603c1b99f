// Where the server may connect on a tenant's behalf. Registering a connection
// makes the server open a socket to whatever host it names: without a
// policy the API is a network scanner (cloud metadata, the server's own
// loopback services, Unix sockets). Every connection to a tenant's database
// — the probe at registration, the checks at create, every session of a
// running replication — goes through `stream()`, whose socket resolves the
// host, checks every address, and connects to the address it checked (a
// name that resolves elsewhere a moment later gains nothing).
import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP, Socket } from "node:net";

/** The configuration: entries are `host[:port]`, `address[:port]` or `cidr[:port]` (IPv6 in brackets when a port follows). */
export interface DestinationRules {
  /** Allowed even when denied by `deny` or by default. */
  allow?: string[];
  /** Denied besides the defaults. */
  deny?: string[];
  /** How names resolve (default: the system's resolver, as every client's). */
  lookup?: (host: string) => Promise<string[]>;
}

/** A destination the policy refuses; the message says why, for operators. */
export class DestinationRefused extends Error {
  override name = "DestinationRefused";
  readonly code = "EDESTINATION";
}

interface Rule {
  text: string;
  /** A host name, or a suffix (`*.example.com` → ".example.com"). */
  name?: string;
  addresses?: BlockList;
  port?: number;
}

// Denied unless allowed: nothing a tenant's database should be.
const DEFAULT_DENIED: [string, number, string][] = [
  ["0.0.0.0", 8, "an unspecified address"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (cloud metadata lives at 169.254.169.254)"],
  ["100.100.100.200", 32, "a cloud metadata address"],
  ["224.0.0.0", 3, "multicast or reserved"],
  ["::", 128, "an unspecified address"],
  ["::1", 128, "loopback"],
  ["fe80::", 10, "link-local"],
  ["fd00:ec2::254", 128, "a cloud metadata address"],
  ["ff00::", 8, "multicast"],
];
const DEFAULT_DENIED_NAMES = ["metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"];

const HOST_NAME = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i;

/** Parses one allow/deny entry; throws an Error naming it when it is none. */
export function parseRule(text: string): Rule {
  const bad = (why: string) => new Error(`"${text}" is not a host, address or CIDR with an optional port: ${why}`);
  let host = text.trim();
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if ((host.match(/:/g) ?? []).length === 1) {
    const at = host.lastIndexOf(":");
    if (!/^\d+$/.test(host.slice(at + 1))) throw bad("the port is not a number");
    port = Number(host.slice(at + 1));
    host = host.slice(0, at);
  }
  if (port !== undefined && (port < 1 || port > 65535)) throw bad("the port is not from 1 to 65535");
  const rule: Rule = { text, ...(port !== undefined ? { port } : {}) };
  const [address, bits] = host.split("/") as [string, string | undefined];
  const family = isIP(address);
  if (family) {
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128) || (bits !== undefined && !/^\d+$/.test(bits))) throw bad("bad prefix length");
    rule.addresses = new BlockList();
    rule.addresses.addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
    return rule;
  }
  if (bits !== undefined || !HOST_NAME.test(host)) throw bad("not a host name");
  rule.name = normalize(host).replace(/^\*\./, ".");
  return rule;
}

function normalize(host: string): string {
  return host.toLowerCase().replace(/\.$/, "").replace(/^\[(.*)\]$/, "$1");
}

// ::ffff:169.254.169.254 is 169.254.169.254; a zone (%eth0) says nothing about the address.
function plain(address: string): { address: string; type: "ipv4" | "ipv6" } {
  const bare = address.split("%")[0]!;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return { address: mapped[1]!, type: "ipv4" };
  return { address: bare, type: isIP(bare) === 4 ? "ipv4" : "ipv6" };
}

export class DestinationPolicy {
  private readonly allow: Rule[];
  private readonly deny: Rule[];
  private readonly defaults = DEFAULT_DENIED.map(([address, prefix, why]) => {
    const list = new BlockList();
    list.addSubnet(address, prefix, isIP(address) === 4 ? "ipv4" : "ipv6");
    return { list, why };
  });
  private readonly lookup: (host: string) => Promise<string[]>;

  constructor(rules: DestinationRules = {}) {
    this.allow = (rules.allow ?? []).filter((t) => t.trim()).map(parseRule);
    this.deny = (rules.deny ?? []).filter((t) => t.trim()).map(parseRule);
    this.lookup = rules.lookup ?? (async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address));
  }

  /**
   * The addresses `host` resolves to, every one of them allowed at `port`;
   * else rejects with DestinationRefused (or the resolver's error).
   */
  async check(host: string, port: number): Promise<string[]> {
    if (host.startsWith("/") || host.startsWith("@")) throw new DestinationRefused(`${host} is a Unix socket: only TCP destinations are allowed`);
    const name = normalize(host);
    const literal = isIP(name) !== 0;
    // A name the operator allowed is trusted with whatever it resolves to.
    const allowedName = !literal && this.allow.some((r) => this.nameMatches(r, name, port));
    if (!literal && !allowedName) {
      const denied = this.deny.find((r) => this.nameMatches(r, name, port));
      if (denied) throw new DestinationRefused(`${host} is denied (--deny-hosts ${denied.text})`);
      if (DEFAULT_DENIED_NAMES.includes(name)) throw new DestinationRefused(`${host} is a cloud metadata service`);
    }
    const addresses = literal ? [name] : await this.lookup(name);
    if (addresses.length === 0) throw new DestinationRefused(`${host} resolves to no address`);
    if (allowedName) return addresses;
    for (const a of addresses) {
      const { address, type } = plain(a);
      const where = literal ? address : `${host} resolves to ${address}, which`;
      if (this.allow.some((r) => r.addresses?.check(address, type) && (r.port === undefined || r.port === port))) continue;
      const denied = this.deny.find((r) => r.addresses?.check(address, type) && (r.port === undefined || r.port === port));
      if (denied) throw new DestinationRefused(`${where} is denied (--deny-hosts ${denied.text})`);
      const byDefault = this.defaults.find((d) => d.list.check(address, type));
      if (byDefault) throw new DestinationRefused(`${where} is ${byDefault.why}: not allowed unless --allow-hosts names it (with port ${port})`);
    }
    return addresses;
  }

  /**
   * pg's `stream` option: a socket whose connect(port, host) checks the
   * destination first and then connects to the first checked address.
   */
  readonly stream = (): Socket => {
    const socket = new Socket();
    const connect = socket.connect.bind(socket) as (options: { port: number; host: string }) => Socket;
    // pg calls connect(port, host), or connect(path) for a Unix socket.
    socket.connect = ((port: unknown, host: unknown) => {
      const checked = typeof port === "number" && typeof host === "string" ? this.check(host, port) : Promise.reject(new DestinationRefused(`${String(port)} is a Unix socket: only TCP destinations are allowed`));
      checked.then(
        ([address]) => {
          if (!socket.destroyed) connect({ port: port as number, host: address! });
        },
        (e: unknown) => socket.destroy(e as Error),
      );
      return socket;
    }) as Socket["connect"];
    return socket;
  };

  private nameMatches(rule: Rule, name: string, port: number): boolean {
    if (rule.name === undefined || (rule.port !== undefined && rule.port !== port)) return false;
    return rule.name.startsWith(".") ? name.endsWith(rule.name) : name === rule.name;
  }
}

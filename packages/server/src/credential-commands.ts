// The commands of heliosdb-replication-server that handle credentials:
// `token` prints a JWT the servers accept; `signing-keys rotate|retire`
// changes the servers' own signing keys in the control plane.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "./config";
import { createPool, migrate } from "./store/db";
import { Notices } from "./store/notices";
import { loadMasterKey, SecretBox } from "./store/secrets";
import { SigningKeyStore } from "./store/signing-keys";
import { issueToken, loadSigningKey } from "./transport/auth";
import { CREDENTIALS_CHANNEL } from "./transport/credentials";
import { SigningKeyRing } from "./transport/key-ring";

export const TOKEN_USAGE = `heliosdb-replication-server token --tenant T --roles R [R...] [--permissions P [P...]] [--ttl 1h] [--subject S]
                                   [--data-dir DIR | --database-url URL]
      print a JWT the server accepts: signed with DIR/jwt.key (HS256), or with
      the control plane's current signing key (ES256) when a database URL is given
  heliosdb-replication-server signing-keys rotate | retire KID  --database-url URL [--data-dir DIR]
      rotate: a new key signs from now on, the one it replaces verifies 2 more days;
      retire: tokens signed with KID are refused by every server at once`;

export async function tokenCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: "string" },
      roles: { type: "string", multiple: true },
      permissions: { type: "string", multiple: true },
      ttl: { type: "string", default: "1h" },
      subject: { type: "string" },
      "data-dir": { type: "string" },
      "database-url": { type: "string" },
    },
    allowPositionals: true,
  });
  // `--roles Admin Operator` and `--roles Admin --roles Operator` both work.
  const roles = gather(args, "--roles");
  const permissions = gather(args, "--permissions");
  if (roles.length === 0) throw new UsageError("token: --roles is required (Admin, Operator or Viewer)");
  if (values.tenant !== undefined && !values.tenant.trim()) throw new UsageError("token: --tenant must name a tenant (leave it out for an operator's token)");
  const dataDir = resolve(values["data-dir"] ?? process.env.HELIOS_DATA_DIR ?? ".heliosdb");
  const request = {
    roles,
    ...(permissions.length ? { permissions } : {}),
    ...(values.tenant ? { tenantId: values.tenant } : {}),
    ...(values.subject ? { subject: values.subject } : {}),
    ttl: values.ttl!,
  };
  const databaseUrl = values["database-url"];
  if (!databaseUrl) return console.log(await issueToken(loadSigningKey(dataDir), request));
  await withRing(databaseUrl, dataDir, async (ring) => console.log(await issueToken(await ring.currentKey(), request)));
}

export async function signingKeysCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { "data-dir": { type: "string" }, "database-url": { type: "string" } },
    allowPositionals: true,
  });
  const [action, kid] = positionals;
  const databaseUrl = values["database-url"] ?? process.env.HELIOS_DATABASE_URL;
  if (!databaseUrl) throw new UsageError("signing-keys: --database-url (or HELIOS_DATABASE_URL) is required");
  const dataDir = resolve(values["data-dir"] ?? process.env.HELIOS_DATA_DIR ?? ".heliosdb");
  if (action === "rotate") return withRing(databaseUrl, dataDir, async (ring) => console.log(`signing with ${await ring.rotate()}`));
  if (action === "retire" && kid) {
    return withRing(databaseUrl, dataDir, async (ring) => {
      if (!(await ring.retire(kid))) throw new Error(`no active signing key ${kid}`);
      console.log(`retired ${kid}`);
    });
  }
  throw new UsageError("signing-keys: rotate, or retire KID");
}

// The control plane's keys, sealed with the master key (HELIOS_MASTER_KEY or DIR/master.key).
async function withRing(databaseUrl: string, dataDir: string, run: (ring: SigningKeyRing) => Promise<void>): Promise<void> {
  const db = createPool(databaseUrl);
  try {
    await migrate(db);
    await run(new SigningKeyRing(new SigningKeyStore(db, new SecretBox(loadMasterKey(dataDir))), new Notices(db, CREDENTIALS_CHANNEL, "heliosdb-cli")));
  } finally {
    await db.end();
  }
}

// Values after a flag, up to the next flag.
function gather(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== flag) continue;
    for (let j = i + 1; j < args.length && !args[j]!.startsWith("--"); j++) out.push(args[j]!);
  }
  return out;
}

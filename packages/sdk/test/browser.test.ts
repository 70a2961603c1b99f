// The SDK in a real browser: a page bundled with esbuild from another origin
// than the server's, in headless Chromium (playwright-core with the system
// /usr/bin/chromium), calls the server over REST and gRPC-web through CORS,
// streams metrics and gets a typed error (test/browser/page.ts); and spec
// §9.1's example as written runs there over gRPC-web.
import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "esbuild";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startWorld, type World } from "../../server/src/testing/world";

const CHROMIUM = "/usr/bin/chromium";
let world: World;
let browser: Browser;
let pages: http.Server;
let origin: string;
// The §9.1 example's bundle, made by its test (it holds an API key made then).
let quickstart = "";

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`headless Chromium is missing at ${CHROMIUM}: install Debian's package (apt-get install -y chromium; scripts/test.sh does)`);
  const bundle = await build({ entryPoints: [new URL("./browser/page.ts", import.meta.url).pathname], bundle: true, platform: "browser", format: "iife", write: false, logLevel: "silent" });
  const script = bundle.outputFiles[0]!.contents;
  pages = http.createServer((req, res) => {
    if (req.url === "/page.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    if (req.url === "/quickstart.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(quickstart);
    if (req.url === "/quickstart") return void res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>§9.1</title><script type="module" src="/quickstart.js"></script>');
    res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>sdk</title><script src="/page.js"></script>');
  });
  await new Promise<void>((resolve) => pages.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  // The server allows the page's origin, and only it.
  world = await startWorld({ users: 100, app: { transport: { corsOrigins: [origin] } } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (pages ? pages.close(resolve) : resolve(undefined)));
  await world?.close();
}, 120_000);

test("in Chromium, from another origin: get, list, a typed NotFoundError and a metric stream, over REST and gRPC-web", async () => {
  const id = await world.createReplication("sdk_browser", ["users"]);
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(origin);
  const seen = await page.evaluate(([baseUrl, token, replication]) => (globalThis as unknown as { runSdk: (a: string, b: string, c: string) => Promise<unknown> }).runSdk(baseUrl!, token!, replication!), [world.app.urls.rest, world.token, id]);
  for (const transport of ["rest", "grpc-web"]) {
    const s = (seen as Record<string, { id: string; tenantId: string; listed: string[]; error: Record<string, unknown>; samples: string[]; sockets: string[] }>)[transport]!;
    expect(s.id, transport).toBe(id);
    expect(s.tenantId).toBe("tenant-123");
    expect(s.listed).toContain(id);
    expect(s.error).toMatchObject({ notFound: true, name: "NotFoundError", code: "NOT_FOUND", status: 404 });
    expect(s.error.requestId).toBeTruthy();
    expect(s.samples).toEqual([id, id]);
    // REST streams over the WebSocket API, the token in the URL (a browser cannot set headers on a socket).
    expect(s.sockets, transport).toEqual(transport === "rest" ? ["/v1/ws?token"] : []);
  }
  expect(problems).toEqual([]);
  await page.close();
}, 90_000);

test("spec §9.1's example, as written in examples/typescript/quickstart.ts, runs in Chromium over gRPC-web: the replication's id, then its lag", async () => {
  const key = await world.rest("POST", "/api-keys", { name: "quickstart in chromium", roles: ["Operator"], tenant_id: "tenant-123", tier: "Standard" });
  expect(key.status).toBe(201);
  const shim = new URL("./browser/grpc-web-sdk.ts", import.meta.url).pathname;
  const bundle = await build({
    entryPoints: [new URL("../../../examples/typescript/quickstart.ts", import.meta.url).pathname],
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    logLevel: "silent",
    // What the example reads from its environment, and the SDK it imports: the browser entry over gRPC-web.
    define: { "process.env.HELIOSDB_API_KEY": JSON.stringify(key.body.secret), "process.env.HELIOSDB_BASE_URL": JSON.stringify(world.app.urls.rest) },
    plugins: [{ name: "sdk", setup: (b) => void b.onResolve({ filter: /^@heliosdb\/replication-sdk$/ }, () => ({ path: shim })) }],
  });
  quickstart = bundle.outputFiles[0]!.text;
  const page = await browser.newPage();
  const problems: string[] = [];
  const printed: string[] = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => printed.push(m.text()));
  const calls: string[] = [];
  page.on("request", (r) => calls.push(`${r.headers()["content-type"] ?? ""} ${new URL(r.url()).pathname}`));
  await page.goto(`${origin}/quickstart`);
  await expect.poll(() => printed.filter((l) => /^Lag: [\d.]+s$/.test(l)).length, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
  await page.close();
  const id = /^Created replication: ([0-9a-f-]{36})$/.exec(printed[0] ?? "")?.[1];
  expect(id, printed.join("\n")).toBeDefined();
  expect((await world.rest("GET", `/replications/${id}`)).body).toMatchObject({ tenant_id: "tenant-123", config: { qos_tier: "Premium", max_lag_seconds: 5, priority: 90 } });
  // Every call of the example went over gRPC-web.
  const api = calls.filter((c) => c.includes("/heliosdb."));
  expect(api.length).toBeGreaterThanOrEqual(3);
  for (const call of api) expect(call).toMatch(/^application\/grpc-web/);
  expect(problems).toEqual([]);
}, 120_000);

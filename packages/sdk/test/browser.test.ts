// The SDK in a real browser: a page bundled with esbuild from another origin
// than the server's, in headless Chromium (playwright-core with the system
// /usr/bin/chromium), calls the server over REST and gRPC-web through CORS,
// streams metrics and gets a typed error (test/browser/page.ts).
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

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`headless Chromium is missing at ${CHROMIUM}: install Debian's package (apt-get install -y chromium; scripts/test.sh does)`);
  const bundle = await build({ entryPoints: [new URL("./browser/page.ts", import.meta.url).pathname], bundle: true, platform: "browser", format: "iife", write: false, logLevel: "silent" });
  const script = bundle.outputFiles[0]!.contents;
  pages = http.createServer((req, res) => {
    if (req.url === "/page.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
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

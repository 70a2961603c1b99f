// "@heliosdb/replication-sdk" as browser.test.ts bundles spec §9.1's example
// (examples/typescript/quickstart.ts, unchanged) for Chromium: the SDK's
// browser entry, its client calling over gRPC-web.
import { HeliosDBReplicationClient as BrowserClient, type ClientOptions } from "../../src/index";

export * from "../../src/index";

export class HeliosDBReplicationClient extends BrowserClient {
  constructor(options: ClientOptions) {
    super({ transport: "grpc-web", ...options });
  }
}

// Services whose milestone has not come yet: every RPC answers UNIMPLEMENTED
// (HTTP 501 over REST) with the milestone's name — never an invented result.
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { apiError } from "../transport/errors";

export function registerUnimplemented(router: ConnectRouter, service: DescService, milestone: string): void {
  const impl: Record<string, unknown> = {};
  for (const method of service.methods) {
    const fail = () => apiError("UNIMPLEMENTED", `${service.name}.${method.name} arrives with the ${milestone} milestone`, { milestone });
    impl[method.localName] =
      method.methodKind === "unary"
        ? async () => {
            throw fail();
          }
        : // eslint-disable-next-line require-yield
          async function* () {
            throw fail();
          };
  }
  router.service(service, impl as never);
}

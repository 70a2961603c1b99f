// gRPC server reflection (grpc.reflection.v1 and v1alpha): lets `buf curl`,
// grpcurl and other tools call the gRPC port without a schema file. The
// descriptors are the generated code's own (DescFile.proto is the file's
// FileDescriptorProto), for every service the router serves and every file
// those import, google/api and google/protobuf included.
import {
  create,
  fromBinary,
  toBinary,
  type DescEnum,
  type DescExtension,
  type DescFile,
  type DescMessage,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import {
  ServerReflection as ServerReflectionV1,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
} from "../gen/grpc/reflection/v1/reflection_pb";
import {
  ServerReflection as ServerReflectionV1alpha,
  ServerReflectionRequestSchema as ServerReflectionRequestSchemaV1alpha,
  ServerReflectionResponseSchema as ServerReflectionResponseSchemaV1alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb";

type Response = MessageInitShape<typeof ServerReflectionResponseSchema>;
type Answer = Response["messageResponse"];

/** What reflection can tell: the files of a set of services and everything they import. */
export class ReflectionIndex {
  /** Fully-qualified service names, in the order given. */
  readonly serviceNames: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly messages = new Map<string, DescMessage>();
  /** Extendee's type name → extension number → the extension. */
  private readonly extensions = new Map<string, Map<number, DescExtension>>();

  constructor(services: Iterable<DescService>) {
    const names = new Set<string>();
    for (const service of services) {
      names.add(service.typeName);
      this.addFile(service.file);
    }
    this.serviceNames = [...names];
  }

  /** A file by its name (e.g. "heliosdb/replication/v1/replication.proto"). */
  file(name: string): DescFile | undefined {
    return this.files.get(name);
  }

  /** The file that defines a fully-qualified symbol: service, method, message, field, oneof, enum, enum value or extension. */
  fileContainingSymbol(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }

  /** The file that defines extension `number` of message `extendee`. */
  fileContainingExtension(extendee: string, number: number): DescFile | undefined {
    return this.extensions.get(extendee.replace(/^\./, ""))?.get(number)?.file;
  }

  /** The extension numbers of a message known here (undefined for an unknown message). */
  extensionNumbers(extendee: string): number[] | undefined {
    const name = extendee.replace(/^\./, "");
    if (!this.messages.has(name)) return undefined;
    return [...(this.extensions.get(name)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * The serialized FileDescriptorProto of `file` first, then of each of its
   * transitive dependencies not in `sent` (the files already sent on this
   * stream, as gRPC's own servers do); adds them all to `sent`.
   */
  withDependencies(file: DescFile, sent: Set<string>): Uint8Array[] {
    const out: Uint8Array[] = [];
    const visit = (f: DescFile, requested: boolean) => {
      const name = f.proto.name;
      if (!requested && sent.has(name)) return;
      sent.add(name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const dep of f.dependencies) if (!sent.has(dep.proto.name)) visit(dep, false);
    };
    visit(file, true);
    return out;
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    const pkg = file.proto.package;
    for (const e of file.enums) this.addEnum(file, e, pkg);
    for (const m of file.messages) this.addMessage(file, m);
    for (const x of file.extensions) this.addExtension(file, x);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
  }

  private addMessage(file: DescFile, message: DescMessage): void {
    this.symbols.set(message.typeName, file);
    this.messages.set(message.typeName, message);
    for (const f of message.fields) this.symbols.set(`${message.typeName}.${f.name}`, file);
    for (const o of message.oneofs) this.symbols.set(`${message.typeName}.${o.name}`, file);
    for (const e of message.nestedEnums) this.addEnum(file, e, message.typeName);
    for (const m of message.nestedMessages) this.addMessage(file, m);
    for (const x of message.nestedExtensions) this.addExtension(file, x);
  }

  /** Enum values are scoped like their enum: siblings of it, not children. */
  private addEnum(file: DescFile, e: DescEnum, scope: string): void {
    this.symbols.set(e.typeName, file);
    for (const v of e.values) this.symbols.set(scope ? `${scope}.${v.name}` : v.name, file);
  }

  private addExtension(file: DescFile, x: DescExtension): void {
    this.symbols.set(x.typeName, file);
    let byNumber = this.extensions.get(x.extendee.typeName);
    if (!byNumber) this.extensions.set(x.extendee.typeName, (byNumber = new Map()));
    byNumber.set(x.number, x);
  }
}

/** The answer to one request of a ServerReflectionInfo stream. */
export function answer(index: ReflectionIndex, request: ServerReflectionRequest, sent: Set<string>): Response {
  return { validHost: request.host, originalRequest: request, messageResponse: respond(index, request.messageRequest, sent) };
}

function respond(index: ReflectionIndex, req: ServerReflectionRequest["messageRequest"], sent: Set<string>): Answer {
  const files = (file: DescFile | undefined, what: string): Answer =>
    file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.withDependencies(file, sent) } } : error(Code.NotFound, `${what} not found`);
  switch (req.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(index.file(req.value), `file ${req.value}`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(req.value), `symbol ${req.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = req.value;
      return files(index.fileContainingExtension(containingType, extensionNumber), `extension ${extensionNumber} of ${containingType}`);
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(req.value);
      if (!numbers) return error(Code.NotFound, `type ${req.value} not found`);
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value.replace(/^\./, ""), extensionNumber: numbers } };
    }
    default:
      return error(Code.InvalidArgument, "the request names no known message_request");
  }
}

function error(code: Code, message: string): Answer {
  return { case: "errorResponse", value: { errorCode: code, errorMessage: message } };
}

/**
 * Registers grpc.reflection.v1 and v1alpha ServerReflection on the router.
 * Call it after every other service: the services listed are the router's
 * at the first reflection request, this one included.
 */
export function registerReflection(router: ConnectRouter): void {
  let index: ReflectionIndex | undefined;
  const current = () => (index ??= new ReflectionIndex(router.handlers.map((h) => h.service)));
  router.service(ServerReflectionV1, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) yield answer(current(), request, sent);
    },
  });
  // v1alpha has the same messages with the same field numbers: answered by
  // the v1 code through the wire format.
  router.service(ServerReflectionV1alpha, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) {
        const v1 = fromBinary(ServerReflectionRequestSchema, toBinary(ServerReflectionRequestSchemaV1alpha, request));
        const response = answer(current(), v1, sent);
        yield fromBinary(ServerReflectionResponseSchemaV1alpha, toBinary(ServerReflectionResponseSchema, create(ServerReflectionResponseSchema, response)));
      }
    },
  });
}

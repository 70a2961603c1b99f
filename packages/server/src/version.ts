// The server's version, reported by /v1/health: the package's own.
import pkg from "../package.json";

export const VERSION: string = pkg.version;

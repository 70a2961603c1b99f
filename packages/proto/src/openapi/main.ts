// The plugin's entry point: reads a CodeGeneratorRequest from stdin, writes
// the CodeGeneratorResponse to stdout. scripts/protoc-gen-openapi.mjs bundles
// this file and runs it.
import { runNodeJs } from "@bufbuild/protoplugin";
import { openApiPlugin } from "./plugin";

runNodeJs(openApiPlugin);

/**
 * Parse options for a value checked once per process: an API answer, a config or cache file, a token's claims.
 * zod compiles a parser for an object schema the first time it parses with it (generated code, built with
 * `new Function`). That pays off for a schema that checks many values in one run (the parse cache's entries, a
 * build's stream of messages), not for one answer: the generated code is compiled again in every process (V8's code
 * cache holds only the bundle's own), and a DAG-only deploy spent about 6 ms of CPU on it (README, "How it is built").
 */
export const CHECKED_ONCE = { jitless: true } as const;

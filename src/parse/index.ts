/** The DAG parse engine behind `astro dev parse` and `astro dev pytest`. */
export { runParse, type ParseOptions, type ParsePorts, type ParseProgressEvent } from './runParse.js';
export { runPytest, type PytestOptions, type PytestPorts, type PytestResult } from './pytest.js';
export { headline, PARSE_SUCCESS_MESSAGE, renderParseReport, type RenderOptions } from './render.js';
export { findInterpreter, type InterpreterChoice } from './interpreter.js';
export type { DockerClient } from './container.js';
export { parseReport, type ParseError, type ParseFileResult, type ParseReport, type ParseSummary } from './schema.js';

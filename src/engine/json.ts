// JSON as tunelab's code types it: values it writes (study logs, exports, configs) are `Json`; an object read
// from a file whose fields are still to be checked is `UncheckedJson`.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A parsed JSON object, every field still `unknown` until a reader checks it. */
export type UncheckedJson = Record<string, unknown>;

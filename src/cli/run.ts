// The `tunelab` executable: the command line's arguments to `main`, its result to the exit code. Built into
// dist-cli/tunelab.mjs (npm run build), which bin/tunelab.mjs runs.
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));

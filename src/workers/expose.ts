// Exposes a trial runner on a comlink endpoint; shared by the browser and the Node worker entries.
import * as Comlink from 'comlink';
import type { TrialCallbacks, TrialJob } from '../engine/tune/protocol.ts';
import { createTrialRunner, type RunnerHost } from '../engine/tune/runner.ts';

export function exposeTrialRunner(host: Omit<RunnerHost, 'transfer'>, endpoint?: Comlink.Endpoint): void {
  const runner = createTrialRunner({ ...host, transfer: Comlink.transfer });
  const api: typeof runner = {
    ...runner,
    async run(job: TrialJob, callbacks: TrialCallbacks) {
      try {
        return await runner.run(job, callbacks);
      } finally {
        // Closes the callback channel, so nothing keeps the coordinator's event loop alive.
        (callbacks as Comlink.Remote<TrialCallbacks>)[Comlink.releaseProxy]();
      }
    },
  };
  Comlink.expose(api, endpoint);
}

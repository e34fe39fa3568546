// Exposes a trial runner on a comlink endpoint; shared by the browser and the Node worker entries.
import * as Comlink from 'comlink';
import type { TrialCallbacks, TrialJob } from '../engine/tune/protocol.ts';
import { createTrialRunner, type RunnerHost } from '../engine/tune/runner.ts';
import { Unsettled } from '../engine/unsettled.ts';

export interface ExposedRunner {
  /**
   * Ends this worker's work for good: stops the running trial and frees the device, then resolves once every
   * call in flight and every promise of the device has settled, or after `graceMs`. The Node entry exits the
   * thread after it: dawn.node aborts the process if a thread goes with one of its promises pending.
   */
  shutdown(graceMs: number): Promise<void>;
}

export function exposeTrialRunner(
  host: Omit<RunnerHost, 'transfer'>,
  endpoint?: Comlink.Endpoint,
): ExposedRunner {
  const runner = createTrialRunner({ ...host, transfer: Comlink.transfer });
  const inFlight = new Unsettled();
  const api: typeof runner = {
    ...runner,
    init: (...args) => inFlight.add(runner.init(...args)),
    checkpoint: (number) => inFlight.add(runner.checkpoint(number)),
    run(job: TrialJob, callbacks: TrialCallbacks) {
      return inFlight.add(
        runner.run(job, callbacks).finally(() => {
          // Closes the callback channel, so nothing keeps the coordinator's event loop alive.
          (callbacks as Comlink.Remote<TrialCallbacks>)[Comlink.releaseProxy]();
        }),
      );
    },
  };
  Comlink.expose(api, endpoint);
  return {
    async shutdown(graceMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      const settled = Promise.allSettled([runner.shutdown(), inFlight.settled()]);
      await Promise.race([settled, grace]);
      clearTimeout(timer);
    },
  };
}

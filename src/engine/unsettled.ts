// A set of promises not settled yet: `add` one (it is returned as is), and `settled()` resolves once none is
// left, including any added while it waits. Used to let a Node worker thread end only when nothing of Dawn's
// or of its own calls is still pending (gpu/device.ts, workers/expose.ts).
export class Unsettled {
  readonly #pending = new Set<Promise<unknown>>();

  add<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    const settle = () => this.#pending.delete(promise);
    promise.then(settle, settle);
    return promise;
  }

  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}

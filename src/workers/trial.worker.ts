// A trial worker in the browser: a dedicated module Worker with its own GPUDevice (navigator.gpu) and one
// copy of the base model, running trials one after another for the pool (pool.ts, spawn-browser.ts).
import { exposeTrialRunner } from './expose.ts';

exposeTrialRunner({ gpu: () => navigator.gpu });

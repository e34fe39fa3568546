// Builds the sample datasets served from public/samples/, deterministic from fixed seeds:
//   addition.jsonl      {prompt, completion} two-digit sums ("23+58=" → "81"): an instruction task scored by
//                       exact match of the generated completion
//   reverse.jsonl       {prompt, completion} reverse a short word ("rev abc:" → "cba")
//   parity.csv          text,label classification: is the number even or odd (accuracy / macro-F1)
//   aesop.txt           a few of Aesop's fables (public domain, Townsend's 1867 translation, abridged)
//
//   node --import tsx scripts/make-samples.ts [outDir]   (default public/samples)
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rng } from '../test/reference/random.ts';

const out = process.argv[2] ?? 'public/samples';
await mkdir(out, { recursive: true });

const int = (next: () => number, lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));

function addition(n: number): string {
  const next = rng(7);
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = int(next, 10, 49);
    const b = int(next, 10, 49);
    rows.push(JSON.stringify({ prompt: `${a}+${b}=`, completion: String(a + b) }));
  }
  return rows.join('\n') + '\n';
}

function reverse(n: number): string {
  const next = rng(11);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = int(next, 3, 6);
    let w = '';
    for (let k = 0; k < len; k++) w += letters[int(next, 0, 25)];
    rows.push(JSON.stringify({ prompt: `rev ${w}:`, completion: [...w].reverse().join('') }));
  }
  return rows.join('\n') + '\n';
}

function parity(n: number): string {
  const next = rng(13);
  const rows = ['text,label'];
  for (let i = 0; i < n; i++) {
    const x = int(next, 0, 999);
    rows.push(`${x},${x % 2 === 0 ? 'even' : 'odd'}`);
  }
  return rows.join('\n') + '\n';
}

const AESOP = `The Hare and the Tortoise

A Hare one day ridiculed the short feet and slow pace of the Tortoise, who replied, laughing: "Though you be swift as the wind, I will beat you in a race." The Hare, believing her assertion to be simply impossible, assented to the proposal. On the day appointed for the race the two started together. The Tortoise never for a moment stopped, but went on with a slow but steady pace straight to the end of the course. The Hare, lying down by the wayside, fell fast asleep. At last waking up, and moving as fast as he could, he saw the Tortoise had reached the goal, and was comfortably dozing after her fatigue. Slow but steady wins the race.

The Fox and the Grapes

A famished Fox saw some clusters of ripe black grapes hanging from a trellised vine. She resorted to all her tricks to get at them, but wearied herself in vain, for she could not reach them. At last she turned away, hiding her disappointment and saying: "The Grapes are sour, and not ripe as I thought."

The Lion and the Mouse

A Lion was awakened from sleep by a Mouse running over his face. Rising up angrily, he caught him and was about to kill him, when the Mouse piteously entreated, saying: "If you would only spare my life, I would be sure to repay your kindness." The Lion laughed and let him go. It happened shortly after this that the Lion was caught by some hunters, who bound him by strong ropes to the ground. The Mouse, recognizing his roar, came and gnawed the rope with his teeth, and set him free, exclaiming: "You ridiculed the idea of my ever being able to help you, expecting to receive from me any repayment of your favor; now you know that it is possible for even a Mouse to confer benefits on a Lion."

The Crow and the Pitcher

A Crow perishing with thirst saw a pitcher, and hoping to find water, flew to it with delight. When he reached it, he discovered to his grief that it contained so little water that he could not possibly get at it. He tried everything he could think of to reach the water, but all his efforts were in vain. At last he collected as many stones as he could carry and dropped them one by one with his beak into the pitcher, until he brought the water within his reach and thus saved his life. Necessity is the mother of invention.
`;

const files: Record<string, string> = {
  'addition.jsonl': addition(240),
  'reverse.jsonl': reverse(240),
  'parity.csv': parity(240),
  'aesop.txt': AESOP,
};
for (const [name, text] of Object.entries(files)) await writeFile(join(out, name), text);
console.log(`wrote ${Object.keys(files).join(', ')} to ${out}`);

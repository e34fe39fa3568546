// Chart colours from the page's CSS variables, so charts follow light and dark mode.
import type { Palette } from './chart-options.ts';

export function palette(): Palette {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  return {
    text: v('--text', '#1b1d22'),
    muted: v('--muted', '#5d6470'),
    accent: v('--chart', '#5470c6'),
    grid: v('--border', '#dcdfe5'),
    pruned: v('--pruned', '#9aa0aa'),
    best: v('--accent', '#5b3df5'),
  };
}

import { describe, expect, it } from 'vitest';
import { memoryFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import { loadTokenizer, ModelTokenizer } from '../../../src/engine/model/tokenizer.ts';
import { buildTinyModel, tinySpecialIds, tinyTokenizer } from '../../fixtures/tiny-models.ts';

const ids = tinySpecialIds();

describe('tokenizer', () => {
  it('encodes and decodes byte-level BPE, round trip', async () => {
    const tok = await loadTokenizer(memoryFiles('tiny', buildTinyModel({ arch: 'qwen2' }).files));
    const text = 'hello world, the quick brown fox — ünïcödé 123!';
    const encoded = tok.encode(text);
    expect(encoded.every((id) => id >= 0 && id < tok.vocabSize)).toBe(true);
    expect(encoded.length).toBeLessThan(new TextEncoder().encode(text).length); // merges happened
    expect(tok.decode(encoded)).toBe(text);
    expect(tok.vocabSize).toBe(256 + 30 + 3);
    // Qwen-style: tokenizer_config.json names no BOS; config.json's bos_token_id is the fallback.
    expect([tok.eosTokenId, tok.padTokenId, tok.bosTokenId]).toEqual([ids.imEnd, ids.endoftext, null]);
    const withFallback = await loadTokenizer(memoryFiles('tiny', buildTinyModel({ arch: 'qwen2' }).files), {
      bosTokenId: ids.endoftext,
    });
    expect(withFallback.bosTokenId).toBe(ids.endoftext);
  });

  it('adds BOS only with addSpecialTokens (llama post-processor), and keeps special tokens whole', async () => {
    const tok = await loadTokenizer(memoryFiles('tiny', buildTinyModel({ arch: 'llama' }).files));
    expect(tok.bosTokenId).toBe(ids.imStart);
    const plain = tok.encode('the dog', { addSpecialTokens: false });
    expect(tok.encode('the dog')).toEqual([ids.imStart, ...plain]);
    expect(tok.encode('<|im_end|>the', { addSpecialTokens: false })[0]).toBe(ids.imEnd);
    expect(tok.decode([ids.imStart, ...plain], { skipSpecialTokens: true })).toBe('the dog');
    expect(tok.decode([ids.imStart, ...plain])).toBe('<|im_start|>the dog');
  });

  it('renders the chat template with and without the generation prompt', async () => {
    const tok = await loadTokenizer(memoryFiles('tiny', buildTinyModel({ arch: 'qwen2' }).files));
    const chat = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello there' },
    ];
    expect(tok.applyChatTemplate(chat)).toBe(
      '<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello there<|im_end|>\n',
    );
    const prompt = tok.applyChatTemplate(chat, { addGenerationPrompt: true });
    expect(prompt.endsWith('<|im_end|>\n<|im_start|>assistant\n')).toBe(true);
    const encoded = tok.encode(prompt, { addSpecialTokens: false });
    expect(encoded.filter((i) => i === ids.imStart)).toHaveLength(3);
    expect(tok.decode(encoded)).toBe(prompt);
    const llama = await loadTokenizer(memoryFiles('tiny', buildTinyModel({ arch: 'llama' }).files));
    expect(
      llama.applyChatTemplate([{ role: 'user', content: 'hi' }]).startsWith('<|im_start|><|im_start|>user'),
    ).toBe(true);
  });

  it('reads chat_template.jinja and named template lists', async () => {
    const files = buildTinyModel({ arch: 'qwen2' }).files;
    const withJinja = await loadTokenizer(
      memoryFiles('tiny', {
        ...files,
        'chat_template.jinja': '{% for m in messages %}[{{ m.content }}]{% endfor %}',
      }),
    );
    expect(withJinja.applyChatTemplate([{ role: 'user', content: 'a' }])).toBe('[a]');
    const { json, config } = tinyTokenizer(false);
    const listed = new ModelTokenizer(json, {
      ...config,
      chat_template: [
        { name: 'tool_use', template: 'tools' },
        { name: 'default', template: '{{ messages[0].content }}!' },
      ],
    });
    expect(listed.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('x!');
  });

  it('refuses what it cannot use, naming the file', async () => {
    const { json, config } = tinyTokenizer(false);
    expect(() => new ModelTokenizer(json, { ...config, eos_token: '</s>' })).toThrow(
      "tokenizer_config.json: eos_token '</s>' is not in the vocabulary of tokenizer.json",
    );
    const none = new ModelTokenizer(json, { ...config, chat_template: undefined });
    expect(() => none.applyChatTemplate([])).toThrow('tokenizer_config.json: no chat_template');
    expect(() => new ModelTokenizer(json, { ...config, chat_template: '{% for %}' })).toThrow(
      'tokenizer_config.json: chat_template does not parse',
    );
    await expect(loadTokenizer(memoryFiles('repo', { 'config.json': '{}' }))).rejects.toThrow(
      'repo: tokenizer.json is missing',
    );
    await expect(loadTokenizer(memoryFiles('repo', { 'tokenizer.json': '{oops' }))).rejects.toThrow(
      'tokenizer.json: not valid JSON',
    );
  });
});

describe('tokenizer files that are not UTF-8', () => {
  const files = buildTinyModel({ arch: 'llama' }).files;
  const withBadByte = (text: string | Uint8Array, at: number): Uint8Array => {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    return new Uint8Array([...bytes.slice(0, at), 0xff, ...bytes.slice(at)]);
  };

  it('are refused naming the file and the offset, not decoded as U+FFFD', async () => {
    for (const name of ['tokenizer.json', 'tokenizer_config.json'] as const) {
      const original = files[name];
      if (original === undefined) continue;
      const bad = memoryFiles('tiny', { ...files, [name]: withBadByte(original, 30) });
      await expect(loadTokenizer(bad)).rejects.toThrow(
        `${name}: not valid UTF-8 (first bad byte at offset 30)`,
      );
    }
    const template = memoryFiles('tiny', {
      ...files,
      'chat_template.jinja': withBadByte('{{ messages }}', 3),
    });
    await expect(loadTokenizer(template)).rejects.toThrow(
      'chat_template.jinja: not valid UTF-8 (first bad byte at offset 3)',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { memoryFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import { loadTokenizer, ModelTokenizer } from '../../../src/engine/model/tokenizer.ts';
import { dataTokenizer, IGNORE_INDEX, parseDataset } from '../../../src/engine/train/data.ts';
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
    // A tokenizer whose BOS is <|im_start|> (and adds it to plain text): the chat starts with one, not two.
    const llama = await loadTokenizer(memoryFiles('tiny', buildTinyModel({ arch: 'llama' }).files));
    expect(llama.bosTokenId).toBe(ids.imStart);
    expect(llama.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe(
      '<|im_start|>user\nhi<|im_end|>\n',
    );
  });

  it("renders Gemma 3's chat template as transformers does, and trains on the model turns only", async () => {
    const tok = await loadTokenizer(memoryFiles('tiny', buildTinyModel({ arch: 'gemma3' }).files));
    expect([tok.bosTokenId, tok.eosTokenId]).toEqual([ids.gemmaBos, ids.endOfTurn]);
    const chat = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: ' hello there ' },
      { role: 'assistant', content: 'hi' },
    ];
    // The system message joins the first user turn, the assistant is 'model', contents are trimmed.
    const text =
      '<bos><start_of_turn>user\nbe brief\n\nhello there<end_of_turn>\n<start_of_turn>model\nhi<end_of_turn>\n';
    expect(tok.applyChatTemplate(chat)).toBe(text);
    expect(tok.applyChatTemplate(chat.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<bos><start_of_turn>user\nbe brief\n\nhello there<end_of_turn>\n<start_of_turn>model\n',
    );
    expect(() => tok.applyChatTemplate([{ role: 'assistant', content: 'x' }])).toThrow(
      'Conversation roles must alternate',
    );
    const encoded = tok.encode(text, { addSpecialTokens: false });
    expect(encoded[0]).toBe(ids.gemmaBos);
    expect(encoded.filter((i) => i === ids.startOfTurn)).toHaveLength(2);
    // A chat row: the labels cover the model's turn and its <end_of_turn>, nothing before.
    const row = JSON.stringify({ messages: chat });
    const { examples } = parseDataset('chat.jsonl', row, dataTokenizer(tok), { seq: 128 });
    const trained = examples[0].labels.filter((l) => l !== IGNORE_INDEX);
    expect(tok.decode([...trained])).toBe('hi<end_of_turn>\n');
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

describe('malformed tokenizer.json', () => {
  const files = buildTinyModel({ arch: 'llama' }).files;
  const edited = (edit: (json: Record<string, unknown>) => void) => {
    const json = JSON.parse(files['tokenizer.json'] as string) as Record<string, unknown>;
    edit(json);
    return memoryFiles('tiny', { ...files, 'tokenizer.json': JSON.stringify(json) });
  };

  it('refuses a vocabulary id no table can hold, naming it (instead of building a 2^31-entry table)', async () => {
    const bad = edited((j) => {
      const vocab = (j.model as { vocab: Record<string, number> }).vocab;
      vocab[Object.keys(vocab)[5]] = 2 ** 31;
    });
    await expect(loadTokenizer(bad)).rejects.toThrow(
      /^tokenizer\.json: model\.vocab\[".*"\] = 2147483648 is not a token id/,
    );
    const added = edited((j) => ((j.added_tokens as { id: unknown }[])[0].id = -1));
    await expect(loadTokenizer(added)).rejects.toThrow(
      'tokenizer.json: added_tokens[0].id = -1 is not a token id',
    );
  });

  it('refuses a post-processor that adds a token the vocabulary lacks, naming the file', async () => {
    const bad = edited((j) => {
      const pp = j.post_processor as { special_tokens: unknown; single: { SpecialToken: { id: string } }[] };
      pp.special_tokens = { nope: { id: 'nope', ids: [1], tokens: ['nope'] } };
      pp.single[0].SpecialToken.id = 'nope';
    });
    await expect(loadTokenizer(bad)).rejects.toThrow(
      'tokenizer.json: token 0 of the encoding has no id in model.vocab',
    );
  });

  it('refuses at load a post-processor that would only fail when encoding (a TypeError then)', async () => {
    const bad = edited((j) => ((j.post_processor as { single: unknown[] }).single[0] = 7));
    await expect(loadTokenizer(bad)).rejects.toThrow(/^tokenizer\.json: cannot be loaded \(/);
  });

  it('refuses a model.vocab that is not a vocabulary (the library would tokenize every text to nothing)', async () => {
    for (const vocab of ['toString', -1e300, null]) {
      const bad = edited((j) => ((j.model as { vocab: unknown }).vocab = vocab));
      await expect(loadTokenizer(bad)).rejects.toThrow(
        `tokenizer.json: model.vocab must be an object or a list, got ${JSON.stringify(vocab)}`,
      );
    }
  });
});

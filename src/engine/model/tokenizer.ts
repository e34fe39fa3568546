// tokenizer.json through @huggingface/tokenizers, special tokens from tokenizer_config.json, and the chat
// template (tokenizer_config.json's chat_template or a chat_template.jinja file) rendered with
// @huggingface/jinja, as transformers' apply_chat_template renders it.

import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ModelFiles } from '../checkpoint/byte-source.ts';
import { readJson, readText } from '../checkpoint/byte-source.ts';
import { FileFormatError, type UncheckedJson } from '../json.ts';

/** Token ids past this are no vocabulary; the tokenizers library would size tables by the largest id. */
const MAX_TOKEN_ID = 2 ** 24;

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** BOS/EOS and whatever else the post-processor adds (default true, as in transformers). */
  addSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Appends the assistant turn header so the model continues as the assistant. */
  addGenerationPrompt?: boolean;
}

/**
 * Every id in model.vocab and added_tokens must be a token id: one of 2^31 makes the tokenizers library
 * build a table that large (minutes, then out of memory) instead of failing.
 */
function checkTokenIds(json: UncheckedJson): void {
  const refuse = (where: string, id: unknown): never => {
    throw new FileFormatError(
      'tokenizer.json',
      `${where} = ${JSON.stringify(id)} is not a token id (an integer in [0, ${MAX_TOKEN_ID}))`,
    );
  };
  const isId = (id: unknown) => Number.isInteger(id) && (id as number) >= 0 && (id as number) < MAX_TOKEN_ID;
  const model = json.model as UncheckedJson | null | undefined;
  const vocab = typeof model === 'object' && model !== null ? model.vocab : undefined;
  // Every model type has one (else the library tokenizes with an empty vocabulary: the text vanishes).
  if (typeof vocab !== 'object' || vocab === null) {
    throw new FileFormatError(
      'tokenizer.json',
      `model.vocab must be an object or a list, got ${JSON.stringify(vocab)}`,
    );
  }
  // BPE and WordPiece write { token: id }; Unigram writes [[piece, score], ...] (ids are positions).
  if (!Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab))
      if (!isId(id)) refuse(`model.vocab[${JSON.stringify(token)}]`, id);
  }
  const added = json.added_tokens;
  if (Array.isArray(added)) {
    added.forEach((t: unknown, i) => {
      const id = typeof t === 'object' && t !== null ? (t as UncheckedJson).id : undefined;
      if (!isId(id)) refuse(`added_tokens[${i}].id`, id);
    });
  }
}

/** tokenizer_config.json writes special tokens as a string or as an AddedToken dict { content, ... }. */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as UncheckedJson).content === 'string') {
    return (value as UncheckedJson).content as string;
  }
  return null;
}

function pickTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  // A list of named templates: transformers uses 'default' when no name is asked for.
  if (Array.isArray(value)) {
    const named = value.find((t) => (t as UncheckedJson)?.name === 'default') ?? value[0];
    const template = (named as UncheckedJson | undefined)?.template;
    return typeof template === 'string' ? template : null;
  }
  return null;
}

export class ModelTokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #template: Template | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  /** Rows the tokenizer can produce (vocabulary with added tokens). */
  readonly vocabSize: number;
  readonly chatTemplate: string | null;

  /**
   * `tokenizerJson` and `tokenizerConfig` as parsed JSON; `chatTemplate` overrides the config's (e.g. from
   * chat_template.jinja); `fallbackEosIds` come from config.json when tokenizer_config.json names none.
   */
  constructor(
    tokenizerJson: UncheckedJson,
    tokenizerConfig: UncheckedJson,
    options: { chatTemplate?: string | null; fallbackBosId?: number | null; fallbackEosIds?: number[] } = {},
  ) {
    checkTokenIds(tokenizerJson);
    try {
      this.#tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
      // Some malformed parts (a post-processor's fields) only fail when used: use them once here.
      this.#tokenizer.encode('tunelab', { add_special_tokens: true });
    } catch (e) {
      throw new FileFormatError('tokenizer.json', `cannot be loaded (${(e as Error).message})`);
    }
    const id = (token: string | null) =>
      token === null ? null : (this.#tokenizer.token_to_id(token) ?? null);
    this.bosToken = tokenContent(tokenizerConfig.bos_token);
    this.eosToken = tokenContent(tokenizerConfig.eos_token);
    this.padToken = tokenContent(tokenizerConfig.pad_token);
    this.unkToken = tokenContent(tokenizerConfig.unk_token);
    for (const [field, token] of [
      ['bos_token', this.bosToken],
      ['eos_token', this.eosToken],
      ['pad_token', this.padToken],
    ] as const) {
      if (token !== null && id(token) === null) {
        throw new FileFormatError(
          'tokenizer_config.json',
          `${field} '${token}' is not in the vocabulary of tokenizer.json`,
        );
      }
    }
    this.bosTokenId = id(this.bosToken) ?? options.fallbackBosId ?? null;
    this.eosTokenId = id(this.eosToken) ?? options.fallbackEosIds?.[0] ?? null;
    this.padTokenId = id(this.padToken);
    this.vocabSize = this.#tokenizer.get_vocab(true).size;
    this.chatTemplate = options.chatTemplate ?? pickTemplate(tokenizerConfig.chat_template);
    try {
      this.#template = this.chatTemplate === null ? null : new Template(this.chatTemplate);
    } catch (e) {
      throw new FileFormatError(
        'tokenizer_config.json',
        `chat_template does not parse (${(e as Error).message})`,
      );
    }
    this.encode('tunelab'); // checks the ids the post-processor's special tokens get
  }

  encode(text: string, { addSpecialTokens = true }: EncodeOptions = {}): number[] {
    const ids = this.#tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    // A merge or added token whose result is missing from the vocabulary comes back without an id.
    const missing = ids.findIndex((id) => !Number.isInteger(id));
    if (missing >= 0) {
      throw new FileFormatError(
        'tokenizer.json',
        `token ${missing} of the encoding has no id in model.vocab (merges or added_tokens name a token the vocabulary lacks)`,
      );
    }
    return ids;
  }

  decode(
    ids: readonly number[],
    { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {},
  ): string {
    return this.#tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens });
  }

  tokenToId(token: string): number | null {
    return this.#tokenizer.token_to_id(token) ?? null;
  }

  /** The chat rendered to text; encode it with addSpecialTokens: false (the template writes them). */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    { addGenerationPrompt = false }: ChatTemplateOptions = {},
  ): string {
    if (!this.#template)
      throw new Error('tokenizer_config.json: no chat_template, so chats cannot be formatted');
    return this.#template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
      pad_token: this.padToken ?? '',
      unk_token: this.unkToken ?? '',
    });
  }
}

/** Loads tokenizer.json + tokenizer_config.json (+ chat_template.jinja when present) from a model's files. */
export async function loadTokenizer(
  files: ModelFiles,
  fallback: { bosTokenId?: number | null; eosTokenIds?: number[] } = {},
): Promise<ModelTokenizer> {
  if (!files.has('tokenizer.json')) {
    throw new Error(`${files.label}: tokenizer.json is missing (only fast-tokenizer files are supported)`);
  }
  const json = await readJson(files, 'tokenizer.json');
  const config = files.has('tokenizer_config.json') ? await readJson(files, 'tokenizer_config.json') : {};
  for (const [name, v] of [
    ['tokenizer.json', json],
    ['tokenizer_config.json', config],
  ] as const) {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new FileFormatError(name, 'expected a JSON object');
  }
  const chatTemplate = files.has('chat_template.jinja')
    ? await readText(await files.open('chat_template.jinja'))
    : null;
  return new ModelTokenizer(json as UncheckedJson, config as UncheckedJson, {
    chatTemplate,
    fallbackBosId: fallback.bosTokenId,
    fallbackEosIds: fallback.eosTokenIds,
  });
}

export * from './config.ts';
export * from './init.ts';
export * from './peft.ts';

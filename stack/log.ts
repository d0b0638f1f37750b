// Stack console output: one short line per event, never a stack trace for expected failures.
export class StackError extends Error {}
export const say = (msg: string) => console.log(`[stack] ${msg}`);
export function fail(msg: string): never {
  throw new StackError(msg);
}

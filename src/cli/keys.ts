/**
 * Keys on the command line: JSON when the text parses as JSON (`7`, `"7"`, `[1,"x"]`,
 * `[{"table":"d","key":1}]`), otherwise the text itself (`abc`). So `7` is the number 7 and
 * `'"7"'` the string "7".
 */
export function parseKey(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** A key for display: strings as they are, everything else as JSON. */
export const showKey = (key: unknown): string => (typeof key === 'string' ? key : JSON.stringify(key))

/** Every alert links to its runbook, docs/runbooks/<AlertName>.md, on the default branch. */
export const runbookBaseUrl = 'https://github.com/ingesta/ingesta/blob/main/docs/runbooks/';

export function runbookUrl(alertName: string): string {
  return `${runbookBaseUrl}${alertName}.md`;
}

// A file's text, as Vite's `?raw` import gives it (test/contract.ts reads the OpenAPI document so).
declare module "*?raw" {
  const text: string;
  export default text;
}

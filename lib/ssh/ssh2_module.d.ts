// Local declaration of npm:ssh2's module shape (see ssh2_types.ts for why @types/ssh2 is not
// used). The real types of what this project calls are in ssh2_types.ts.
declare const ssh2: { Client: unknown; utils: unknown };
export default ssh2;
export declare const Client: unknown;
export declare const utils: unknown;

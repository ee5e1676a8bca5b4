/** Entry point of the `rnagrad` executable. */
import { main } from './main.js';

await main(process.argv.slice(2));

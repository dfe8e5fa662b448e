import { useContext } from 'react';
import { Image, type ImageStyle, type StyleProp } from 'react-native';

import { ClientContext } from '../hooks/ClientContext';

interface Props {
  link: string;
  label: string;
  style: StyleProp<ImageStyle>;
  testID?: string;
}

/** An image link returned by the gateway (thumbnail, stored query, heatmap), loaded with the API key. */
export function GatewayImage({ link, label, style, testID }: Props) {
  const client = useContext(ClientContext);
  const uri = client ? client.resolve(link) : link;
  const headers = client && !/^(data:|blob:|file:)/.test(uri) ? client.imageHeaders() : undefined;
  return (
    <Image
      accessible
      accessibilityRole="image"
      accessibilityLabel={label}
      source={{ uri, headers }}
      style={style}
      resizeMode="cover"
      testID={testID}
    />
  );
}
